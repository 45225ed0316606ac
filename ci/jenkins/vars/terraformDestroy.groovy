// Cleanup: destroys everything the CI environment of this build created. Called from
// post { always { } } so it runs when an earlier stage failed or the build was aborted.
// Only the ci environment may be destroyed by a pipeline.
void call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'terraform',
        tfvarsCredentials: 'terraform-tfvars-ci',
        stateBucket: env.TF_STATE_BUCKET ?: 'fintech-tfstate',
        attempts: 3,
    ]
    Map cfg = defaults + args
    if (cfg.environment != 'ci') {
        error("terraformDestroy: refusing to destroy '${cfg.environment}'; only ci is ephemeral")
    }
    Map e = fintechEnv(name: 'ci')
    container(cfg.container) {
        withCredentials([file(credentialsId: cfg.tfvarsCredentials, variable: 'TFVARS_FILE')]) {
            withEnv(["TF_DIR=${e.terraformDir}", "STATE_BUCKET=${cfg.stateBucket}", "STATE_PREFIX=${e.statePrefix}",
                     "TF_PREFIX=${e.prefix}", 'TF_IN_AUTOMATION=1', 'TF_INPUT=0']) {
                retry(cfg.attempts) {
                    sh '''
                        cp "$TFVARS_FILE" "$TF_DIR/terraform.tfvars"
                        terraform -chdir="$TF_DIR" init -no-color \
                          -backend-config="bucket=$STATE_BUCKET" -backend-config="prefix=$STATE_PREFIX"
                        terraform -chdir="$TF_DIR" destroy -no-color -auto-approve -var "prefix=$TF_PREFIX"
                    '''
                }
            }
        }
    }
}
