// A Yes/No question to a person of the approvers' group. Returns true only for Yes; No or no
// answer within the time limit returns false (the caller then does nothing). Run it outside an
// agent so that no pod is held while waiting.
boolean call(Map args = [:]) {
    Map defaults = [
        message: 'Proceed?',
        submitter: 'fintech-release-approvers',
        timeoutMinutes: 60,
        ok: 'Submit',
    ]
    Map cfg = defaults + args
    String answer = 'No'
    try {
        timeout(time: cfg.timeoutMinutes, unit: 'MINUTES') {
            answer = input(message: cfg.message, ok: cfg.ok, submitter: cfg.submitter,
                parameters: [choice(name: 'ANSWER', choices: ['No', 'Yes'], description: 'Yes to go ahead, No to do nothing')])
        }
    } catch (org.jenkinsci.plugins.workflow.steps.FlowInterruptedException interrupted) {
        // a No from the input's Abort button or the time limit; anything else (the build itself
        // was aborted) goes on up
        boolean unanswered = interrupted.causes.every { cause ->
            cause.class.simpleName in ['Rejection', 'ExceededTimeout']
        }
        if (!unanswered) {
            throw interrupted
        }
        echo "approval: no answer (${interrupted.causes*.shortDescription.join(', ')}); treated as No"
        answer = 'No'
    }
    echo "approval: '${cfg.message}' answered ${answer}"
    return answer == 'Yes'
}
