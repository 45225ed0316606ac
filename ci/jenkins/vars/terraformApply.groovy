// Infra Build / Cluster Setup: terraform init, plan -out (saved with `terraform show` as a build
// artifact), then apply of exactly that plan. For ci the build's own prefix and state prefix are
// passed (deploy/terraform/README.md). With requireApproval (production) a person reads the
// archived plan and answers Yes/No before anything changes; a plan without changes applies nothing.
// Writes terraform-<env>-outputs.json and returns true when the plan was applied.
boolean call(Map args = [:]) {
    Map defaults = [
        environment: 'ci',
        container: 'terraform',
        tfvarsCredentials: null,          // secret file; default terraform-tfvars-<env>
        stateBucket: env.TF_STATE_BUCKET ?: 'fintech-tfstate',
        requireApproval: false,
        approvers: env.FINTECH_RELEASE_APPROVERS,   // see approval
    ]
    Map cfg = defaults + args
    Map e = fintechEnv(name: cfg.environment)
    String tfvars = cfg.tfvarsCredentials ?: "terraform-tfvars-${cfg.environment}"
    String planFile = "terraform-${cfg.environment}-plan.txt"
    int planStatus = 0
    container(cfg.container) {
        withCredentials([file(credentialsId: tfvars, variable: 'TFVARS_FILE')]) {
            withEnv(["TF_DIR=${e.terraformDir}", "STATE_BUCKET=${cfg.stateBucket}", "STATE_PREFIX=${e.statePrefix}",
                     "TF_PREFIX=${e.prefix}", "ENV_NAME=${cfg.environment}", "PLAN_TXT=${planFile}",
                     'TF_IN_AUTOMATION=1', 'TF_INPUT=0']) {
                sh '''
                    cp "$TFVARS_FILE" "$TF_DIR/terraform.tfvars"
                    terraform -chdir="$TF_DIR" init -no-color \
                      -backend-config="bucket=$STATE_BUCKET" -backend-config="prefix=$STATE_PREFIX"
                '''
                planStatus = sh(returnStatus: true, script: '''
                    extra=""
                    if [ "$ENV_NAME" = ci ]; then
                      extra="-var prefix=$TF_PREFIX -var labels={build=\\"$BUILD_NUMBER\\"}"
                    fi
                    terraform -chdir="$TF_DIR" plan -no-color -out=tfplan -detailed-exitcode $extra
                ''')
                if (planStatus == 1 || planStatus > 2) {
                    error("terraform plan failed for ${cfg.environment}")
                }
                sh 'terraform -chdir="$TF_DIR" show -no-color tfplan > "$PLAN_TXT"'
                archiveArtifacts artifacts: planFile
            }
        }
    }
    boolean apply = planStatus == 2
    if (!apply) {
        echo "terraformApply: ${cfg.environment} matches the code; nothing to apply"
    }
    if (apply && cfg.requireApproval) {
        apply = approval(message: "Apply the Terraform plan to ${cfg.environment}? Read ${planFile} in the build artifacts first.",
            submitter: cfg.approvers)
        if (!apply) {
            unstable("Terraform plan for ${cfg.environment} not approved; nothing applied")
        }
    }
    container(cfg.container) {
        withEnv(["TF_DIR=${e.terraformDir}", "OUTPUTS=terraform-${cfg.environment}-outputs.json", 'TF_IN_AUTOMATION=1']) {
            if (apply) {
                sh 'terraform -chdir="$TF_DIR" apply -no-color -input=false tfplan'
            }
            sh 'terraform -chdir="$TF_DIR" output -json > "$OUTPUTS"'
        }
    }
    archiveArtifacts artifacts: "terraform-${cfg.environment}-outputs.json"
    return apply
}
