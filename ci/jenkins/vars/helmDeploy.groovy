// Helm Deployment: NGINX Gateway Fabric first (release e.gatewayRelease in e.gatewayNamespace), at
// the version pinned in deploy/helm/nginx-gateway-fabric.version (its Gateway API CRDs from the
// same tag), then the fintech chart with the environment's values file and the release plan's
// images file (deploy/helm/README.md, "Install"). Records the revision each release had before this
// upgrade, for helmRollback: env.HELM_PREVIOUS_REVISION (fintech) and env.GATEWAY_PREVIOUS_REVISION
// (the entry point; 0: first install, nothing to go back to; -1: not upgraded by this run), and
// returns both as [release: n, gateway: n]. Each is recorded in env before its upgrade starts, so
// that after a failed upgrade the caller still knows what to roll back (the Jenkinsfile reads env).
// Given the release plan's changed services (changed: [...]) and none changed, it touches neither
// release and returns -1 for both.
Map call(Map args = [:]) {
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
    env.HELM_PREVIOUS_REVISION = '-1'
    env.GATEWAY_PREVIOUS_REVISION = '-1'
    if (cfg.changed != null && cfg.changed.isEmpty()) {
        echo "helmDeploy ${cfg.environment}: no image digest changed; releases left as they are"
        env.HELM_PREVIOUS_REVISION = '-1'
        env.GATEWAY_PREVIOUS_REVISION = '-1'
        return [release: -1, gateway: -1]
    }
    Map e = fintechEnv(name: cfg.environment)
    String images = cfg.imagesFile ?: "images-${cfg.environment}.yaml"
    List<String> overrides = []
    if (cfg.environment == 'ci') {
        // each CI build has its own Terraform prefix (deploy/helm/fintech/values-ci.yaml)
        overrides = ["workloadIdentity.gsaPrefix=${e.prefix}-", "externalSecrets.secretPrefix=${e.prefix}-",
                     "events.pubsubPrefix=${e.prefix}-", "storage.bucketPrefix=${e.prefix}-",
                     "cloudSql.instanceConnectionName=${e.sqlConnectionName}"]
    }
    String previous = '0'
    String gatewayPrevious = '-1'
    container(cfg.container) {
        withEnv(["NGF_VERSION_FILE=${cfg.ngfVersionFile}", "NAMESPACE=${e.namespace}", "RELEASE=${e.release}",
                 "CHART=${e.chart}", "VALUES=${e.valuesFile}", "IMAGES=${images}", "HELM_TIMEOUT=${cfg.timeout}",
                 "GATEWAY_RELEASE=${e.gatewayRelease}", "GATEWAY_NAMESPACE=${e.gatewayNamespace}",
                 "GATEWAY_CHART=${e.gatewayChart}",
                 "SET_ARGS=${overrides.collect { String o -> "--set ${o}" }.join(' ')}"]) {
            if (cfg.installGateway) {
                gatewayPrevious = revisionOf(e.gatewayRelease, e.gatewayNamespace)
                env.GATEWAY_PREVIOUS_REVISION = gatewayPrevious
                sh '''
                    NGF_VERSION=$(tr -d '[:space:]' < "$NGF_VERSION_FILE")
                    kubectl kustomize "https://github.com/nginx/nginx-gateway-fabric/config/crd/gateway-api/standard?ref=v${NGF_VERSION}" \
                      | kubectl apply --server-side -f -
                    helm upgrade --install "$GATEWAY_RELEASE" "$GATEWAY_CHART" \
                      --version "$NGF_VERSION" --namespace "$GATEWAY_NAMESPACE" --create-namespace --wait
                '''
            }
            previous = revisionOf(e.release, e.namespace)
            env.HELM_PREVIOUS_REVISION = previous
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
    return [release: previous as int, gateway: gatewayPrevious as int]
}

// The latest revision of a release, '0' when it is not installed.
String revisionOf(String release, String namespace) {
    String revision = ''
    withEnv(["HISTORY_RELEASE=${release}", "HISTORY_NAMESPACE=${namespace}"]) {
        revision = sh(returnStdout: true, script: '''
            helm history "$HISTORY_RELEASE" --namespace "$HISTORY_NAMESPACE" --max 1 -o json 2>/dev/null \
              | sed -n 's/.*"revision":\\([0-9]*\\).*/\\1/p' | head -n1
        ''').trim()
    }
    return revision ?: '0'
}
