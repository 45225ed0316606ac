// Helm Deployment: NGINX Gateway Fabric first, at the version pinned in
// deploy/helm/nginx-gateway-fabric.version (its Gateway API CRDs from the same tag), then the
// fintech chart with the environment's values file and the release plan's images file
// (deploy/helm/README.md, "Install"). Records the revision it replaced in env.HELM_PREVIOUS_REVISION
// (0: first install) for helmRollback, and returns it. Given the release plan's changed services
// (changed: [...]) and none changed, it touches nothing and returns -1.
int call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        imagesFile: null,                 // default images-<env>.yaml (releasePlan)
        ngfVersionFile: 'deploy/helm/nginx-gateway-fabric.version',
        timeout: '15m',
        installGateway: true,
        changed: null,                    // List from releasePlan; null: deploy regardless
    ]
    Map cfg = defaults + args
    if (cfg.changed != null && cfg.changed.isEmpty()) {
        echo "helmDeploy ${cfg.environment}: no image digest changed; release left as it is"
        env.HELM_PREVIOUS_REVISION = '-1'
        return -1
    }
    Map e = fintechEnv(name: cfg.environment)
    String images = cfg.imagesFile ?: "images-${cfg.environment}.yaml"
    List<String> overrides = []
    if (cfg.environment == 'ci') {
        // each CI build has its own Terraform prefix (deploy/helm/fintech/values-ci.yaml)
        overrides = ["workloadIdentity.gsaPrefix=${e.prefix}-", "externalSecrets.secretPrefix=${e.prefix}-",
                     "cloudSql.instanceConnectionName=${e.sqlConnectionName}"]
    }
    String previous = '0'
    container(cfg.container) {
        withEnv(["NGF_VERSION_FILE=${cfg.ngfVersionFile}", "NAMESPACE=${e.namespace}", "RELEASE=${e.release}",
                 "CHART=${e.chart}", "VALUES=${e.valuesFile}", "IMAGES=${images}", "HELM_TIMEOUT=${cfg.timeout}",
                 "SET_ARGS=${overrides.collect { String o -> "--set ${o}" }.join(' ')}", "INSTALL_GATEWAY=${cfg.installGateway}"]) {
            sh '''
                if [ "$INSTALL_GATEWAY" = true ]; then
                  NGF_VERSION=$(tr -d '[:space:]' < "$NGF_VERSION_FILE")
                  kubectl kustomize "https://github.com/nginx/nginx-gateway-fabric/config/crd/gateway-api/standard?ref=v${NGF_VERSION}" \
                    | kubectl apply --server-side -f -
                  helm upgrade --install ngf oci://ghcr.io/nginx/charts/nginx-gateway-fabric \
                    --version "$NGF_VERSION" --namespace nginx-gateway --create-namespace --wait
                fi
            '''
            previous = sh(returnStdout: true, script: '''
                helm history "$RELEASE" --namespace "$NAMESPACE" --max 1 -o json 2>/dev/null \
                  | sed -n 's/.*"revision":\\([0-9]*\\).*/\\1/p' | head -n1
            ''').trim() ?: '0'
            sh '''
                kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
                kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=baseline \
                  pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted
                helm dependency build "$CHART"
                helm upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
                  -f "$VALUES" -f "$IMAGES" $SET_ARGS --wait --timeout "$HELM_TIMEOUT"
            '''
        }
    }
    env.HELM_PREVIOUS_REVISION = previous
    return previous as int
}
