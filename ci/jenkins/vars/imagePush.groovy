// Image Push (master only): pushes each built image with its artifact-number tag and records the
// digest the registry reports (images/<name>.digest, archived; `fintech release-plan` deploys by
// these digests, never by tag). Service images go through `fintech image push`, which also reads
// the manifest back from the registry and fails unless its digest is the recorded one; our agent
// images (agentImages: built by imageBuild from their own Containerfiles) through
// `buildah push --digestfile`. Authenticates with the agent's Workload Identity.
Map call(Map args = [:]) {
    Map defaults = [
        container: 'buildah',
        tokenContainer: 'ops',
        branch: 'master',
        images: (env.BUILT_IMAGES ?: '').split(',').findAll { String s -> s } as List,
        binary: env.FINTECH_BINARY ?: 'target/x86_64-unknown-linux-musl/image/fintech',
        // images that are not services: pushed with buildah alone
        agentImages: ['ops', 'agent-rust'],
    ]
    Map cfg = defaults + args
    if (env.BRANCH_NAME != cfg.branch) {
        echo "imagePush: branch ${env.BRANCH_NAME} is not ${cfg.branch}; nothing pushed"
        return [:]
    }
    Map<String, String> digests = [:]
    // created by the agent's user (uid 1000): the buildah container writes the digests into it as
    // root, and writeFile below (the agent again) adds pushed.txt
    sh 'mkdir -p images'
    // a short-lived registry token of the agent's Workload Identity; removed after the push
    container(cfg.tokenContainer) {
        sh '(umask 077; gcloud auth print-access-token > .registry-token)'
    }
    container(cfg.container) {
        cfg.images.each { String image ->
            int colon = image.lastIndexOf(':')
            String repository = image.substring(0, colon)
            String name = repository.tokenize('/').last()
            withEnv(["IMAGE=${image}", "NAME=${name}", "REGISTRY=${repository.substring(0, repository.lastIndexOf('/'))}",
                     "TAG=${image.substring(colon + 1)}", "DIGEST_FILE=images/${name}.digest", "FINTECH=./${cfg.binary}"]) {
                sh '''
                    registry_host=${IMAGE%%/*}
                    buildah login -u oauth2accesstoken --password-stdin "$registry_host" < .registry-token
                '''
                if (name in cfg.agentImages) {
                    sh 'buildah push --digestfile "$DIGEST_FILE" "$IMAGE" "docker://$IMAGE"'
                } else {
                    // set +x: the token must not reach the build log
                    sh '''
                        set +x
                        FINTECH_REGISTRY_USERNAME=oauth2accesstoken
                        FINTECH_REGISTRY_PASSWORD=$(cat .registry-token)
                        export FINTECH_REGISTRY_USERNAME FINTECH_REGISTRY_PASSWORD
                        "$FINTECH" image push "$NAME" --registry "$REGISTRY" --tag "$TAG" --digest-out images
                    '''
                }
                digests[image] = readFile("images/${name}.digest").trim()
            }
        }
        sh 'rm -f .registry-token'
    }
    writeFile file: 'images/pushed.txt', text: digests.collect { k, v -> "${k}@${v}\n" }.join('')
    archiveArtifacts artifacts: 'images/*', allowEmptyArchive: true
    return digests
}
