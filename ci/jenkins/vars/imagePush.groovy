// Image Push (master only): pushes each built image with its artifact-number tag and records the
// digest the registry reports (images/<name>.digest, archived; `fintech release-plan` deploys by
// these digests, never by tag). Authenticates with the agent's Workload Identity.
Map call(Map args = [:]) {
    Map defaults = [
        container: 'buildah',
        tokenContainer: 'ops',
        branch: 'master',
        images: (env.BUILT_IMAGES ?: '').split(',').findAll { String s -> s } as List,
    ]
    Map cfg = defaults + args
    if (env.BRANCH_NAME != cfg.branch) {
        echo "imagePush: branch ${env.BRANCH_NAME} is not ${cfg.branch}; nothing pushed"
        return [:]
    }
    Map<String, String> digests = [:]
    // a short-lived registry token of the agent's Workload Identity; removed after the push
    container(cfg.tokenContainer) {
        sh '(umask 077; gcloud auth print-access-token > .registry-token)'
    }
    container(cfg.container) {
        sh 'mkdir -p images'
        cfg.images.each { String image ->
            String name = image.tokenize('/').last().tokenize(':').first()
            withEnv(["IMAGE=${image}", "DIGEST_FILE=images/${name}.digest"]) {
                sh '''
                    registry_host=${IMAGE%%/*}
                    buildah login -u oauth2accesstoken --password-stdin "$registry_host" < .registry-token
                    buildah push --digestfile "$DIGEST_FILE" "$IMAGE" "docker://$IMAGE"
                '''
                digests[image] = readFile("images/${name}.digest").trim()
            }
        }
        sh 'rm -f .registry-token'
    }
    writeFile file: 'images/pushed.txt', text: digests.collect { k, v -> "${k}@${v}\n" }.join('')
    archiveArtifacts artifacts: 'images/*', allowEmptyArchive: true
    return digests
}
