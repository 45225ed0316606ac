// Points kubectl and helm at an environment's GKE cluster (Workload Identity of the agent, no key
// files). The kubeconfig is written into the workspace so that every container of the pod sees it.
String call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        kubeconfig: '.kube/config',
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String path = "${env.WORKSPACE}/${cfg.kubeconfig}"
    container(cfg.container) {
        withEnv(["KUBECONFIG=${path}", "CLUSTER=${e.cluster}", "REGION=${e.region}", "PROJECT=${e.project}"]) {
            sh '''
                mkdir -p "$(dirname "$KUBECONFIG")"
                gcloud container clusters get-credentials "$CLUSTER" --region "$REGION" --project "$PROJECT"
            '''
        }
    }
    env.KUBECONFIG = path
    return path
}
