// Build: the one static (musl) release binary every service image runs.
// Sets env.FINTECH_BINARY to its path.
String call(Map args = [:]) {
    Map defaults = [
        container: 'rust',
        target: 'x86_64-unknown-linux-musl',
        packageName: 'fintech',
    ]
    Map cfg = defaults + args
    container(cfg.container) {
        withEnv(["TARGET=${cfg.target}", "PACKAGE=${cfg.packageName}"]) {
            sh '''
                cargo build --release --locked --target "$TARGET" -p "$PACKAGE"
                file "target/$TARGET/release/fintech" | grep -q 'static'
            '''
        }
    }
    env.FINTECH_BINARY = "target/${cfg.target}/release/fintech"
    return env.FINTECH_BINARY
}
