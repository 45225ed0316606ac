// Points kubectl and helm at an environment's GKE cluster (Workload Identity of the agent, no key
// files). The kubeconfig is written into the workspace so that every container of the pod sees it.
// GKE kubeconfigs authenticate through the gke-gcloud-auth-plugin exec plugin, which the ops
// image installs (images/Containerfile.ops): every kubectl, helm and `fintech verify-rollout` that
// reads this kubeconfig must run in the ops container. The step fails here, naming the cause,
// when the plugin is missing or the agent's identity may not list the release's pods.
// Environments whose control plane is reached on its private IP (fintechEnv's privateEndpoint, set
// where Terraform's gke.private_endpoint is true; or internalIp: true) get a kubeconfig with the
// private endpoint (`get-credentials --internal-ip`); the others the public endpoint, which
// master_authorized_networks limits to the Jenkins agents' range.
String call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        kubeconfig: '.kube/config',
        internalIp: null,                 // null: fintechEnv's privateEndpoint of the environment
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String path = "${env.WORKSPACE}/${cfg.kubeconfig}"
    boolean internalIp = cfg.internalIp == null ? e.privateEndpoint as boolean : cfg.internalIp as boolean
    container(cfg.container) {
        withEnv(["KUBECONFIG=${path}", "CLUSTER=${e.cluster}", "REGION=${e.region}", "PROJECT=${e.project}",
                 "NAMESPACE=${e.namespace}", 'USE_GKE_GCLOUD_AUTH_PLUGIN=True',
                 "ENDPOINT_ARGS=${internalIp ? '--internal-ip' : ''}"]) {
            sh '''
                command -v gke-gcloud-auth-plugin >/dev/null || {
                  echo "gke-gcloud-auth-plugin is not installed in this container: GKE kubeconfigs need it (images/Containerfile.ops)" >&2
                  exit 1
                }
                mkdir -p "$(dirname "$KUBECONFIG")"
                gcloud container clusters get-credentials "$CLUSTER" --region "$REGION" --project "$PROJECT" $ENDPOINT_ARGS
                kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}{"\\n"}'
                kubectl auth can-i list pods --namespace "$NAMESPACE"
            '''
        }
    }
    env.KUBECONFIG = path
    return path
}
