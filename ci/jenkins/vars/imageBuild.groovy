// Docker/Image Build: one image per changed service from ci/jenkins/images/Containerfile (the
// static binary on an empty base, non-root, CA certificates, `fintech serve <service>`), built by
// `fintech image build` with buildah (no Docker daemon) and tagged
// <registry>/<service>:<artifact number>. The binary just built runs the command: it is static, so
// it runs in the buildah container. Labels: version, revision (GIT_COMMIT), source (the remote),
// created (the commit time, which also fixes every time in the image: the build is reproducible).
// Also builds the ops image (the binary with a shell, used by the pipelines' `fintech` commands),
// tagged <registry>/ops:<env.ARTIFACT_OPS> (<fintech crate version>-<build number>): the Jenkins
// values pin the agents' ops image by that tag and its pushed digest.
// Runs in the "buildah" container: root there, with only the capabilities buildah needs
// (jenkins-values.yaml explains each); files it writes into the workspace are root's.
List<String> call(Map args = [:]) {
    Map defaults = [
        container: 'buildah',
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
        opsContainerfile: 'ci/jenkins/images/Containerfile.ops',
        services: (env.SERVICES ?: '').split(',').findAll { String s -> s } as List,
        binary: env.FINTECH_BINARY ?: 'target/x86_64-unknown-linux-musl/image/fintech',
    ]
    Map cfg = defaults + args
    List<String> built = []
    // git runs in the agent's default container (the buildah image has none)
    String commitTime = sh(returnStdout: true, script: 'git log -1 --format=%ct').trim()
    String source = sh(returnStdout: true, script: 'git remote get-url origin').trim()
    container(cfg.container) {
        cfg.services.each { String svc ->
            String tag = artifactOf(svc)
            withEnv(["SERVICE=${svc}", "TAG=${tag}", "REGISTRY=${cfg.registry}", "FINTECH=./${cfg.binary}",
                     "SOURCE_DATE_EPOCH=${commitTime}", "SOURCE=${source}"]) {
                sh '''
                    "$FINTECH" image build "$SERVICE" --registry "$REGISTRY" --tag "$TAG" \
                      --binary "$FINTECH" --revision "$GIT_COMMIT" --source "$SOURCE"
                '''
            }
            built << "${cfg.registry}/${svc}:${tag}"
        }
        if (cfg.services) {
            String opsTag = "${cfg.registry}/ops:${artifactOf('ops')}"
            withEnv(["IMAGE=${opsTag}", "CONTAINERFILE=${cfg.opsContainerfile}", "BINARY=${cfg.binary}"]) {
                sh '''
                    buildah build --isolation chroot --layers=false -f "$CONTAINERFILE" \
                      --build-arg BINARY="$BINARY" -t "$IMAGE" .
                '''
            }
            built << opsTag
        }
    }
    env.BUILT_IMAGES = built.join(',')
    return built
}

String artifactOf(String svc) {
    String key = "ARTIFACT_${svc.toUpperCase().replace('-', '_')}"
    String value = env[key]
    if (!value) {
        error("imageBuild: ${key} is not set (initWorkspace computes it)")
    }
    return value
}
