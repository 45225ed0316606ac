//! `fintech release-plan` against a real registry: a private docker-registry on a free
//! 127.0.0.1 port, with small images pushed over the registry API (no buildah needed here;
//! scripts/check-images.sh runs the plan over real images and renders its file with Helm).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fintech::registry::Digest;
use fintech::services::SERVICES;
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A docker-registry stopped (by its pid) when the test ends, even by a panic.
struct Registry {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let binary = Path::new("/usr/bin/docker-registry");
    assert!(
        binary.is_file(),
        "/usr/bin/docker-registry is missing: apt-get install -y docker-registry (scripts/test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\nhttp:\n  addr: {address}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry { child, address, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&registry.address).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start on {}", registry.address);
        std::thread::sleep(Duration::from_millis(50));
    }
    registry
}

async fn upload_blob(client: &reqwest::Client, base: &str, repository: &str, bytes: Vec<u8>) -> (Digest, usize) {
    let digest = Digest::of(&bytes);
    let started = client.post(format!("{base}/v2/{repository}/blobs/uploads/")).send().await.unwrap();
    assert_eq!(started.status(), 202, "starting a blob upload");
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with('/') { format!("{base}{location}") } else { location };
    let separator = if location.contains('?') { '&' } else { '?' };
    let size = bytes.len();
    let done = client.put(format!("{location}{separator}digest={digest}")).body(bytes).send().await.unwrap();
    assert_eq!(done.status(), 201, "finishing a blob upload");
    (digest, size)
}

/// Pushes a one-layer image whose content is `content`; returns its manifest digest.
async fn push(client: &reqwest::Client, base: &str, repository: &str, tag: &str, content: &str) -> Digest {
    let (layer, layer_size) = upload_blob(client, base, repository, content.as_bytes().to_vec()).await;
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "65532:65532", "Labels": {"test.content": content}},
        "rootfs": {"type": "layers", "diff_ids": [layer.as_str()]}
    });
    let (config, config_size) = upload_blob(client, base, repository, config.to_string().into_bytes()).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": layer_size}]
    })
    .to_string();
    let answer = client
        .put(format!("{base}/v2/{repository}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201, "pushing {repository}:{tag}");
    let digest = Digest::of(manifest.as_bytes());
    assert_eq!(answer.headers()["docker-content-digest"].to_str().unwrap(), digest.as_str());
    digest
}

struct Outcome {
    success: bool,
    stderr: String,
    plan: Option<Value>,
    images: Option<String>,
}

fn release_plan(dir: &Path, registry: &str, extra: &[&str]) -> Outcome {
    let images = dir.join("images-ci.yaml");
    let plan = dir.join("release-plan-ci.json");
    let _ = std::fs::remove_file(&images);
    let _ = std::fs::remove_file(&plan);
    let output = Command::new(env!("CARGO_BIN_EXE_fintech"))
        .env_clear()
        .args(["release-plan", "--environment", "ci", "--registry", registry, "--namespace", "fintech"])
        .args(["--release", "fintech", "--tls-verify=false", "--images-out"])
        .arg(&images)
        .arg("--plan-out")
        .arg(&plan)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Outcome {
        success: output.status.success(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        plan: std::fs::read_to_string(&plan).ok().map(|t| serde_json::from_str(&t).unwrap()),
        images: std::fs::read_to_string(&images).ok(),
    }
}

fn names(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_plan_compares_the_newest_pushed_digest_with_what_runs() {
    let registry = start_registry();
    let base = format!("http://{}", registry.address);
    let client = fintech_http::http_client().build().expect("an HTTP client");
    let dir = tempfile::tempdir().unwrap();
    let name = |i: usize| SERVICES[i].name();
    let version = |i: usize| SERVICES[i].version();
    assert!(SERVICES.len() >= 3, "the scenario needs three services");

    // Build 1 of every service. The second service also has builds 2 and 10 (10 is the newest:
    // build numbers compare as numbers), a tag of an older version with a higher build number
    // and a `latest`, which are not artifact numbers of its version.
    let mut first = Vec::new();
    for (i, svc) in SERVICES.iter().enumerate() {
        let repository = format!("fintech/{}", svc.name());
        first.push(push(&client, &base, &repository, &format!("{}-1", svc.version()), &format!("{i}/1")).await);
    }
    let repository = format!("fintech/{}", name(1));
    push(&client, &base, &repository, &format!("{}-2", version(1)), "1/2").await;
    let newest = push(&client, &base, &repository, &format!("{}-10", version(1)), "1/10").await;
    push(&client, &base, &repository, "0.0.1-99", "1/old").await;
    push(&client, &base, &repository, "latest", "1/latest").await;
    let proxy = push(&client, &base, "mirror/cloud-sql-proxy", "2.23.0", "proxy").await;

    // Deployed: service 0 runs build 1; service 1 runs build 1 (so 10 is a change); service 2 is
    // not deployed yet; the others run build 1.
    let mut services = serde_json::Map::new();
    for (i, svc) in SERVICES.iter().enumerate() {
        if i != 2 {
            services.insert(svc.name().to_owned(), json!({"image": {"digest": first[i].as_str(), "tag": "x"}}));
        }
    }
    let deployed = dir.path().join("deployed.json");
    std::fs::write(&deployed, json!({"environment": "ci", "services": services}).to_string()).unwrap();

    let path = format!("{}/fintech", registry.address);
    let proxy_ref = format!("{}/mirror/cloud-sql-proxy:2.23.0", registry.address);
    let out = release_plan(dir.path(), &path, &["--deployed", deployed.to_str().unwrap(), "--proxy-image", &proxy_ref]);
    assert!(out.success, "release-plan failed:\n{}", out.stderr);
    let plan = out.plan.unwrap();
    assert_eq!(names(&plan["changed"]), vec![name(1), name(2)]);
    let unchanged: Vec<String> =
        (0..SERVICES.len()).filter(|i| *i != 1 && *i != 2).map(|i| name(i).to_owned()).collect();
    assert_eq!(names(&plan["unchanged"]), unchanged);
    assert_eq!(plan["services"][name(1)]["tag"], json!(format!("{}-10", version(1))));
    assert_eq!(plan["services"][name(1)]["digest"], json!(newest.as_str()));
    assert_eq!(plan["services"][name(2)]["deployed"], Value::Null);

    let images = out.images.unwrap();
    for (i, svc) in SERVICES.iter().enumerate() {
        let digest = if i == 1 { &newest } else { &first[i] };
        assert!(
            images.contains(&format!("  {}:\n    image:\n", svc.name()))
                && images.contains(&format!("digest: \"{digest}\"")),
            "{} is not pinned to {digest} in:\n{images}",
            svc.name()
        );
    }
    assert!(images.contains(&format!("cloudSql:\n  proxy:\n    image:\n      digest: \"{proxy}\"")), "{images}");

    // Everything deployed as planned: nothing changes, and the proxy digest is kept.
    let mut services = serde_json::Map::new();
    for (name, svc) in plan["services"].as_object().unwrap() {
        services.insert(name.clone(), json!({"image": {"digest": svc["digest"]}}));
    }
    std::fs::write(
        &deployed,
        json!({"services": services, "cloudSql": {"proxy": {"image": {"digest": proxy.as_str()}}}}).to_string(),
    )
    .unwrap();
    let out = release_plan(dir.path(), &path, &["--deployed", deployed.to_str().unwrap()]);
    assert!(out.success, "release-plan failed:\n{}", out.stderr);
    let plan = out.plan.unwrap();
    assert!(names(&plan["changed"]).is_empty(), "{plan}");
    assert_eq!(names(&plan["unchanged"]).len(), SERVICES.len());
    assert!(out.images.unwrap().contains(proxy.as_str()));

    // No release installed yet (helm says so): every service is new.
    let helm = fake_helm(dir.path(), "Error: release: not found", 1);
    let out = release_plan(dir.path(), &path, &["--helm", helm.to_str().unwrap(), "--proxy-image", &proxy_ref]);
    assert!(out.success, "release-plan failed:\n{}", out.stderr);
    assert_eq!(names(&out.plan.unwrap()["changed"]).len(), SERVICES.len());

    // Any other helm failure stops the plan: it must not guess what runs.
    let helm = fake_helm(dir.path(), "Error: Kubernetes cluster unreachable", 1);
    let out = release_plan(dir.path(), &path, &["--helm", helm.to_str().unwrap()]);
    assert!(!out.success && out.stderr.contains("cluster unreachable"), "{}", out.stderr);
    assert!(out.plan.is_none() && out.images.is_none(), "nothing is written when the plan fails");

    // A registry path without the services' images: the plan names each missing one.
    let out = release_plan(
        dir.path(),
        &format!("{}/elsewhere", registry.address),
        &["--deployed", deployed.to_str().unwrap()],
    );
    assert!(!out.success, "a plan without images must fail");
    for svc in SERVICES {
        assert!(
            out.stderr.contains(&format!("{}: no tag {}-<build number>", svc.name(), svc.version())),
            "{}",
            out.stderr
        );
    }
    assert!(out.plan.is_none(), "nothing is written when the plan fails");
}

/// A `helm` that prints `message` on stderr and exits with `code`.
fn fake_helm(dir: &Path, message: &str, code: i32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("helm-{code}-{}", message.len()));
    std::fs::write(&path, format!("#!/bin/sh\necho '{message}' >&2\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
