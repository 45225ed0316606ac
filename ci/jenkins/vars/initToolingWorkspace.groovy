// Initialize Workspace & Image Tags of the tooling images pipeline: cleans the workspace, checks
// the commit out again and computes the tag of each of our agent images, <version>-<build number>:
//   ops         <version in fintech/Cargo.toml>-<build>   (the fintech binary it carries)
//   agent-rust  <Rust version of its base image>-<build>  (FROM rust:<version>-... in its Containerfile)
// e.g. ops:0.1.0-7 and agent-rust:1.95.0-7. Build numbers start at 1: the images built by hand
// before the job existed are tagged -0 (ci/jenkins/README.md, "Bootstrap"), so no tag is reused.
// Sets env.ARTIFACT_OPS, env.ARTIFACT_AGENT_RUST, env.GIT_COMMIT and, for this single-branch job,
// env.BRANCH_NAME (the branch it built, so that imagePush pushes only from master); returns the
// map name -> tag.
Map call(Map args = [:]) {
    Map defaults = [
        opsManifest: 'fintech/Cargo.toml',
        agentRustContainerfile: 'ci/jenkins/images/Containerfile.agent-rust',
    ]
    Map cfg = defaults + args
    cleanWs()
    Map scmVars = checkout scm
    env.GIT_COMMIT = scmVars.GIT_COMMIT
    if (!env.BRANCH_NAME) {
        env.BRANCH_NAME = (scmVars.GIT_BRANCH ?: '').replaceFirst('^(refs/heads/|origin/)', '')
    }
    withEnv(["OPS_MANIFEST=${cfg.opsManifest}", "AGENT_RUST_CONTAINERFILE=${cfg.agentRustContainerfile}"]) {
        String opsVersion = sh(returnStdout: true, script: '''
            sed -n '/^\\[package\\]/,/^\\[/{s/^version *= *"\\(.*\\)"/\\1/p}' "$OPS_MANIFEST" | head -n1
        ''').trim()
        String rustVersion = sh(returnStdout: true, script: '''
            sed -n 's/^FROM rust:\\([0-9][0-9.]*\\)-.*/\\1/p' "$AGENT_RUST_CONTAINERFILE" | head -n1
        ''').trim()
        if (!opsVersion || !rustVersion) {
            error("initToolingWorkspace: no version in ${cfg.opsManifest} or no FROM rust:<version> in ${cfg.agentRustContainerfile}")
        }
        env.ARTIFACT_OPS = "${opsVersion}-${env.BUILD_NUMBER}"
        env.ARTIFACT_AGENT_RUST = "${rustVersion}-${env.BUILD_NUMBER}"
    }
    Map<String, String> tags = ['ops': env.ARTIFACT_OPS, 'agent-rust': env.ARTIFACT_AGENT_RUST]
    currentBuild.description = tags.collect { k, v -> "${k}:${v}" }.join(' ')
    writeFile file: 'artifact-numbers.txt', text: tags.collect { k, v -> "${k}=${v}\n" }.join('')
    archiveArtifacts artifacts: 'artifact-numbers.txt'
    return tags
}
