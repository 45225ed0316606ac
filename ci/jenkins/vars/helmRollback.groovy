// Rollback: returns each release this build upgraded to the revision it had before (helmDeploy's
// env.HELM_PREVIOUS_REVISION and env.GATEWAY_PREVIOUS_REVISION), waits for it and checks the pods
// again. The fintech release goes back first, then the NGINX Gateway Fabric entry point: the
// restored routes and policies were written for the older gateway, so they never run on a gateway
// older than them. A revision of 0 or less means there is nothing to go back to for that release
// (first installed, or not upgraded by this build) and it is left alone; in particular a first
// install is never rolled back into nothing. The Gateway API CRDs, applied with kubectl before the
// NGF upgrade, are not Helm's and stay at the newer version: CRDs only add API versions and fields,
// and rolling a CRD back could drop a version objects are stored in.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'staging',
        container: 'ops',
        revision: env.HELM_PREVIOUS_REVISION ?: '0',
        gatewayRevision: env.GATEWAY_PREVIOUS_REVISION ?: '0',
        timeout: '15m',
        verify: true,
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    List<Map> releases = [
        [release: e.release, namespace: e.namespace, revision: cfg.revision],
        [release: e.gatewayRelease, namespace: e.gatewayNamespace, revision: cfg.gatewayRevision],
    ]
    container(cfg.container) {
        releases.each { Map r ->
            if (((r.revision ?: '0') as String).toInteger() <= 0) {
                echo "helmRollback ${cfg.environment}: ${r.release} not upgraded by this build; left as it is"
                return
            }
            withEnv(["NAMESPACE=${r.namespace}", "RELEASE=${r.release}", "REVISION=${r.revision}",
                     "HELM_TIMEOUT=${cfg.timeout}"]) {
                sh '''
                    helm rollback "$RELEASE" "$REVISION" --namespace "$NAMESPACE" --wait --timeout "$HELM_TIMEOUT"
                    helm history "$RELEASE" --namespace "$NAMESPACE" --max 5
                '''
            }
        }
    }
    if (cfg.verify) {
        podHealthGate(environment: cfg.environment)
    }
}
