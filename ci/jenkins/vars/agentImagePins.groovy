// Agent Image Pins: the fintechAgentImages lines of ci/jenkins/jenkins-values.yaml for the agent
// images this build pushed (tag <version>-<build>, digest from imagePush's images/<name>.digest),
// printed to the log and archived as agent-images.yaml. Putting them into the values (a reviewed
// commit) and running the documented `helm upgrade` moves the agents to the new images; nothing
// here changes the running Jenkins. Returns the text ('' when nothing was pushed, e.g. off master).
String call(Map args = [:]) {
    Map defaults = [
        registry: 'europe-west1-docker.pkg.dev/fintech-shared/fintech-images',
        // image name -> key under fintechAgentImages
        keys: ['ops': 'ops', 'agent-rust': 'agentRust'],
        file: 'agent-images.yaml',
    ]
    Map cfg = defaults + args
    List<String> lines = ['fintechAgentImages:', "  registry: ${cfg.registry}"]
    // an index loop: a map iterator is not serializable, and a step in the loop saves the program
    List<String> names = cfg.keys.keySet() as List
    for (int i = 0; i < names.size(); i++) {
        String name = names[i]
        String digestFile = "images/${name}.digest"
        if (!fileExists(digestFile)) {
            echo "agentImagePins: ${digestFile} missing (not pushed by this build); no pins written"
            return ''
        }
        String digest = readFile(digestFile).trim()
        if (!(digest ==~ /sha256:[0-9a-f]{64}/)) {
            error("agentImagePins: ${digestFile} holds '${digest}', not a sha256 digest")
        }
        String tag = env["ARTIFACT_${name.toUpperCase().replace('-', '_')}"]
        lines += ["  ${cfg.keys[name]}:", "    tag: \"${tag}\"", "    digest: \"${digest}\""]
    }
    String text = lines.join('\n') + '\n'
    writeFile file: cfg.file, text: text
    archiveArtifacts artifacts: cfg.file
    echo "agentImagePins: put these lines into ci/jenkins/jenkins-values.yaml (fintechAgentImages):\n${text}"
    return text
}
