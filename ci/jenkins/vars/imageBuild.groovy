// Docker/Image Build: one image per changed service from ci/jenkins/images/Containerfile (the
// static binary on an empty base, non-root, `fintech serve <service>`), built with buildah (no
// Docker daemon), tagged <registry>/<service>:<artifact number>. Also builds the ops image
// (the binary with a shell, used by the pipelines' `fintech` commands).
List<String> call(Map args = [:]) {
    Map defaults = [
        container: 'buildah',
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
        containerfile: 'ci/jenkins/images/Containerfile',
        opsContainerfile: 'ci/jenkins/images/Containerfile.ops',
        services: (env.SERVICES ?: '').split(',').findAll { String s -> s } as List,
        binary: env.FINTECH_BINARY ?: 'target/x86_64-unknown-linux-musl/release/fintech',
    ]
    Map cfg = defaults + args
    List<String> built = []
    container(cfg.container) {
        cfg.services.each { String svc ->
            String tag = "${cfg.registry}/${svc}:${artifactOf(svc)}"
            withEnv(["IMAGE=${tag}", "SERVICE=${svc}", "CONTAINERFILE=${cfg.containerfile}", "BINARY=${cfg.binary}"]) {
                sh '''
                    buildah build --isolation chroot --layers=false -f "$CONTAINERFILE" \
                      --build-arg SERVICE="$SERVICE" --build-arg BINARY="$BINARY" \
                      --label org.opencontainers.image.revision="$GIT_COMMIT" -t "$IMAGE" .
                '''
            }
            built << tag
        }
        if (cfg.services) {
            String opsTag = "${cfg.registry}/ops:${env.BUILD_NUMBER}"
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
