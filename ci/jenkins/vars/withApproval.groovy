// A Yes/No question to the approvers (approval), then, only on Yes, the body on a deploy pod
// pointed at the environment's cluster (withDeployAgent). On No nothing runs. Returns true when
// the body ran.
boolean call(Map args = [:], Closure body) {
    Map defaults = [
        message: 'Proceed?',
        submitter: env.FINTECH_RELEASE_APPROVERS,   // see approval
        environment: 'staging',
        timeoutMinutes: 60,
    ]
    Map cfg = defaults + args
    boolean yes = approval(message: cfg.message, submitter: cfg.submitter, timeoutMinutes: cfg.timeoutMinutes)
    if (!yes) {
        echo "No: nothing done (${cfg.message})"
        return false
    }
    withDeployAgent(environment: cfg.environment) {
        body()
    }
    return true
}
