// Docker/Image Build: one image per changed service from ci/jenkins/images/Containerfile (the
// static binary on an empty base, non-root, CA certificates, `fintech serve <service>`), built by
// `fintech image build` with buildah (no Docker daemon) and tagged
// <registry>/<service>:<artifact number>. The binary just built runs the command: it is static, so
// it runs in the buildah container. Labels: version, revision (GIT_COMMIT), source (the remote),
// created (the commit time, which also fixes every time in the image: the build is reproducible).
// With agentImages (the tooling images pipeline), also our own agent images, each with
// `buildah build` from its Containerfile, tagged <registry>/<name>:<env.ARTIFACT_<NAME>>
// (<version>-<build number>, set by initToolingWorkspace): the Jenkins values pin the agents'
// images by that tag and their pushed digest.
// Runs in the "buildah" container: root there, with only the capabilities buildah needs
// (jenkins-values.yaml explains each); files it writes into the workspace are root's.
List<String> call(Map args = [:]) {
    Map defaults = [
        container: 'buildah',
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
        services: (env.SERVICES ?: '').split(',').findAll { String s -> s } as List,
        binary: env.FINTECH_BINARY ?: 'target/x86_64-unknown-linux-musl/image/fintech',
        agentImages: [],                  // names in agentImageSpecs to build, e.g. ['ops', 'agent-rust']
        // our own agent images: Containerfile and build context of each (context '.': the
        // repository, for the ops image's fintech binary, passed as the BINARY build argument)
        agentImageSpecs: [
            'ops': [containerfile: 'ci/jenkins/images/Containerfile.ops', context: '.', binaryArg: true],
            'agent-rust': [containerfile: 'ci/jenkins/images/Containerfile.agent-rust', context: 'ci/jenkins/images',
                           binaryArg: false],
        ],
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
        cfg.agentImages.each { String name ->
            Map spec = cfg.agentImageSpecs[name]
            if (!spec) {
                error("imageBuild: unknown agent image '${name}' (${cfg.agentImageSpecs.keySet().join(', ')})")
            }
            String image = "${cfg.registry}/${name}:${artifactOf(name)}"
            withEnv(["IMAGE=${image}", "CONTAINERFILE=${spec.containerfile}", "CONTEXT=${spec.context}",
                     "BINARY=${cfg.binary}", "BINARY_ARG=${spec.binaryArg}"]) {
                sh '''
                    set -- --isolation chroot --layers=false -f "$CONTAINERFILE" -t "$IMAGE"
                    if [ "$BINARY_ARG" = true ]; then
                      set -- "$@" --build-arg BINARY="$BINARY"
                    fi
                    buildah build "$@" "$CONTEXT"
                '''
            }
            built << image
        }
    }
    env.BUILT_IMAGES = built.join(',')
    return built
}

String artifactOf(String name) {
    String key = "ARTIFACT_${name.toUpperCase().replace('-', '_')}"
    String value = env[key]
    if (!value) {
        error("imageBuild: ${key} is not set (initWorkspace or initToolingWorkspace computes it)")
    }
    return value
}
