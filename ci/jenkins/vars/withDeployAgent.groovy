// Runs the body on a fresh pod of the 'fintech-deploy' template with the commit checked out and,
// when an environment is given, kubectl/helm pointed at its cluster. Used after a Yes/No
// question so that no pod is held while a person decides.
Object call(Map args = [:], Closure body) {
    Map defaults = [
        template: 'fintech-deploy',
        environment: null,
    ]
    Map cfg = defaults + args
    Object result = null
    podTemplate(inheritFrom: cfg.template) {
        node(POD_LABEL) {
            Map scmVars = checkout scm
            env.GIT_COMMIT = env.GIT_COMMIT ?: scmVars.GIT_COMMIT
            if (cfg.environment) {
                clusterCredentials(environment: cfg.environment)
            }
            result = body()
        }
    }
    return result
}
