// Test Stage (and after every deploy and rollback): `fintech verify-rollout` fails the pipeline when
// any pod of a release restarted, is in CrashLoopBackOff, cannot pull its image or is not ready
// within the timeout. It checks every release helmDeploy installs: the fintech release, and the
// NGINX Gateway Fabric entry point in front of it, both its control plane (the ngf release in its
// namespace) and the NGINX data plane NGF runs for the chart's Gateway in the fintech namespace.
// Every target is checked, even after one failed, so that each report exists; the step then fails
// naming the ones that did not pass. The reports (rollout-<env>-<target>.json) are archived.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'ops',
        timeout: '10m',
        maxRestarts: 0,
        gateway: true,                    // false: the fintech release only
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    List<Map> targets = [
        [name: e.release, namespace: e.namespace, selector: "app.kubernetes.io/instance=${e.release}"],
    ]
    if (cfg.gateway) {
        targets << [name: e.gatewayRelease, namespace: e.gatewayNamespace,
                    selector: "app.kubernetes.io/instance=${e.gatewayRelease}"]
        targets << [name: "${e.gatewayRelease}-data-plane", namespace: e.namespace,
                    selector: "gateway.networking.k8s.io/gateway-name=${e.gatewayName}"]
    }
    List<String> failed = []
    container(cfg.container) {
        targets.each { Map t ->
            withEnv(["NAMESPACE=${t.namespace}", "SELECTOR=${t.selector}", "ROLLOUT_TIMEOUT=${cfg.timeout}",
                     "MAX_RESTARTS=${cfg.maxRestarts}", "REPORT=rollout-${cfg.environment}-${t.name}.json"]) {
                int status = sh(returnStatus: true, script: '''
                    fintech verify-rollout --namespace "$NAMESPACE" --selector "$SELECTOR" \
                      --timeout "$ROLLOUT_TIMEOUT" --max-restarts "$MAX_RESTARTS" --report "$REPORT"
                ''')
                if (status != 0) {
                    failed << "${t.name} (${t.namespace}, ${t.selector})"
                }
            }
        }
    }
    archiveArtifacts artifacts: "rollout-${cfg.environment}-*.json", allowEmptyArchive: true
    if (failed) {
        error("podHealthGate ${cfg.environment}: pods not healthy: ${failed.join('; ')}")
    }
}
