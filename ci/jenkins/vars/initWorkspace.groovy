// Initialize Workspace & Artifact Number: cleans the workspace, checks the commit out again,
// works out which services changed, computes each one's artifact number
// (<version in services/<svc>/Cargo.toml>-<build number>) and reports INPROGRESS to Bitbucket.
// Sets env.SERVICES (comma-separated, may be empty) and env.ARTIFACT_<SVC> for each service;
// returns the map service -> artifact number. (The agent images, ops and agent-rust, are built by
// the tooling images pipeline: initToolingWorkspace.)
Map call(Map args = [:]) {
    Map defaults = [
        container: 'ops',
        servicesDir: 'services',
        // a change under any of these rebuilds every service: they are all in the one binary
        sharedPaths: ['Cargo.toml', 'Cargo.lock', 'crates/', 'fintech/', 'rust-toolchain.toml', 'ci/jenkins/images/'],
        bitbucketKey: 'fintech-service',
        // the Bitbucket Cloud repository whose commits get the build status (workspace/repo_slug)
        bitbucketRepository: 'fintech/fintech',
        bitbucketCredentials: 'bitbucket-token',
        notify: true,
    ]
    Map cfg = defaults + args
    cleanWs()
    // a checkout inside a step does not set the GIT_* variables: keep the ones later steps use
    Map scmVars = checkout scm
    ['GIT_COMMIT', 'GIT_PREVIOUS_SUCCESSFUL_COMMIT'].each { String key ->
        if (scmVars[key]) {
            env[key] = scmVars[key]
        }
    }

    List<String> all = sh(returnStdout: true,
        script: "find ${cfg.servicesDir} -mindepth 2 -maxdepth 2 -name Cargo.toml | cut -d/ -f2 | sort")
        .trim().split('\n').findAll { String s -> s } as List
    List<String> changed = changedServices(all, cfg)
    Map<String, String> artifacts = [:]
    changed.each { String svc ->
        artifacts[svc] = "${packageVersion("${cfg.servicesDir}/${svc}/Cargo.toml")}-${env.BUILD_NUMBER}"
        env["ARTIFACT_${envKey(svc)}"] = artifacts[svc]
    }
    env.SERVICES = changed.join(',')
    String numbers = artifacts.collect { k, v -> "${k}=${v}\n" }.join('')
    currentBuild.description = changed ? artifacts.collect { k, v -> "${k}:${v}" }.join(' ') : 'no service changed'
    writeFile file: 'artifact-numbers.txt', text: numbers
    archiveArtifacts artifacts: 'artifact-numbers.txt', allowEmptyArchive: true

    if (cfg.notify) {
        container(cfg.container) {
            withCredentials([string(credentialsId: cfg.bitbucketCredentials, variable: 'FINTECH_BITBUCKET_TOKEN')]) {
                withEnv(["NOTIFY_KEY=${cfg.bitbucketKey}", "NOTIFY_REPOSITORY=${cfg.bitbucketRepository}"]) {
                    sh '''
                        fintech notify bitbucket --state INPROGRESS --commit "$GIT_COMMIT" \
                          --repository "$NOTIFY_REPOSITORY" --key "$NOTIFY_KEY" \
                          --name "$JOB_NAME #$BUILD_NUMBER" --url "$BUILD_URL"
                    '''
                }
            }
        }
    }
    return artifacts
}

// Services whose files changed since the last successful build of this branch (or, for a pull
// request, against its target branch). Without a base to compare with, every service.
List<String> changedServices(List<String> all, Map cfg) {
    String base = env.CHANGE_TARGET ? "origin/${env.CHANGE_TARGET}" : (env.GIT_PREVIOUS_SUCCESSFUL_COMMIT ?: '')
    if (!base) {
        return all
    }
    if (env.CHANGE_TARGET) {
        sh "git fetch --no-tags origin +refs/heads/${env.CHANGE_TARGET}:refs/remotes/origin/${env.CHANGE_TARGET}"
    }
    int known = sh(returnStatus: true, script: "git cat-file -e ${base}^{commit}")
    if (known != 0) {
        return all
    }
    List<String> files = sh(returnStdout: true, script: "git diff --name-only ${base}...HEAD")
        .trim().split('\n').findAll { String s -> s } as List
    if (files.any { String f -> cfg.sharedPaths.any { String p -> f == p || f.startsWith(p) } }) {
        return all
    }
    return all.findAll { String svc -> files.any { String f -> f.startsWith("${cfg.servicesDir}/${svc}/") } }
}

// The [package] version of a Cargo.toml.
String packageVersion(String manifest) {
    String version = sh(returnStdout: true, script: """
        sed -n '/^\\[package\\]/,/^\\[/{s/^version *= *"\\(.*\\)"/\\1/p}' ${manifest} | head -n1
    """).trim()
    if (!version) {
        error("initWorkspace: no version in ${manifest}")
    }
    return version
}

String envKey(String svc) {
    return svc.toUpperCase().replace('-', '_')
}
