// Build: the one static (musl) binary every service image runs, with the cargo profile `image`
// (the release optimisation without debug line tables; see Cargo.toml). Sets env.FINTECH_BINARY
// to its path.
String call(Map args = [:]) {
    Map defaults = [
        container: 'rust',
        target: 'x86_64-unknown-linux-musl',
        profile: 'image',
        packageName: 'fintech',
    ]
    Map cfg = defaults + args
    container(cfg.container) {
        withEnv(["TARGET=${cfg.target}", "PROFILE=${cfg.profile}", "PACKAGE=${cfg.packageName}"]) {
            sh '''
                cargo build --profile "$PROFILE" --locked --target "$TARGET" -p "$PACKAGE"
                file "target/$TARGET/$PROFILE/fintech" | grep -q 'static'
            '''
        }
    }
    env.FINTECH_BINARY = "target/${cfg.target}/${cfg.profile}/fintech"
    return env.FINTECH_BINARY
}
