//! The container image, checked where no Docker engine runs: the Dockerfile's stages are parsed
//! and held to what the README promises (a Rust builder making the `--locked --release` binary, a
//! slim runtime that runs it as a non-root user with volumes for the bundle and the backups), the
//! compose example is parsed as YAML and held to the same paths, and the builder stage is replayed
//! on this machine — from exactly the files it copies, with exactly its `cargo build` command —
//! to check that every shared library the binary needs is one the runtime image ships.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Test, tests};
use yaml_rust2::{Yaml, YamlLoader};

/// The tests of this file, with what each needs (see `harness.rs`).
pub(crate) fn tests() -> Vec<Test> {
    tests! {
        Nothing: [
            runtime_stage_runs_the_release_binary_as_a_non_root_user,
            dockerignore_keeps_build_output_out_but_not_what_the_builder_copies,
            compose_example_runs_the_image_next_to_postgres_with_bundle_and_backups_as_volumes,
            builder_stage_makes_a_binary_whose_libraries_the_runtime_image_ships,
        ],
    }
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN_NAME: &str = "habitat-migrate";

/// The shared libraries of Debian 12's `libc6` and `libgcc-s1` (x86_64 and arm64 names). Both
/// packages are in every Debian image, `debian:bookworm-slim` included: libc6 because every
/// essential package needs it, libgcc-s1 as Priority: required (and through apt → libstdc++6).
/// A library outside this list (libssl, libpq, libsqlite3, …) would be missing at run time.
const BOOKWORM_SLIM_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libnss_files.so.2",
    "libnss_dns.so.2",
    "libmvec.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// The Debian packages [`BOOKWORM_SLIM_LIBS`] come from.
const BOOKWORM_SLIM_LIB_PACKAGES: &[&str] = &["libc6", "libgcc-s1"];

/// The newest glibc symbol version `debian:bookworm-slim` provides (glibc 2.36).
const BOOKWORM_GLIBC: (u32, u32) = (2, 36);

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    alias: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }

    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last()
    }

    /// `WORKDIR` as it stands at the end of the stage (absolute paths only, as ours are).
    fn workdir(&self) -> &str {
        self.last("WORKDIR").unwrap_or("/")
    }

    /// `(name, value)` of every `ENV NAME=value` pair.
    fn env(&self) -> Vec<(String, String)> {
        self.all("ENV")
            .flat_map(|args| args.split_whitespace())
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect()
    }

    /// The `COPY` lines as (flags, sources, destination).
    fn copies(&self) -> Vec<(Vec<String>, Vec<String>, String)> {
        self.all("COPY")
            .map(|args| {
                let words: Vec<String> = args.split_whitespace().map(str::to_string).collect();
                let (flags, paths): (Vec<String>, Vec<String>) =
                    words.into_iter().partition(|w| w.starts_with("--"));
                let (dest, sources) = paths.split_last().expect("COPY has a destination");
                (flags, sources.to_vec(), dest.clone())
            })
            .collect()
    }
}

/// The Dockerfile as stages of instructions: comments dropped, continuation lines joined.
fn dockerfile() -> Vec<Stage> {
    let text = fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile exists");
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_string();
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let alias = match words.as_slice() {
                [_, as_word, alias] if as_word.eq_ignore_ascii_case("as") => {
                    Some((*alias).to_string())
                }
                _ => None,
            };
            stages.push(Stage {
                image: words.first().expect("FROM names an image").to_string(),
                alias,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("the Dockerfile starts with FROM")
                .instructions
                .push(Instruction { keyword, args });
        }
    }
    stages
}

/// An exec-form (JSON array) argument, as `ENTRYPOINT` and `VOLUME` take it.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("{args} is not the exec (JSON array) form: {e}"))
}

/// `bookworm` from `rust:1.95-bookworm` or `debian:bookworm-slim`.
fn debian_release(image: &str) -> &str {
    let tag = image.split_once(':').map_or("", |(_, tag)| tag);
    ["bookworm", "trixie", "bullseye"]
        .into_iter()
        .find(|codename| tag.split('-').any(|part| part == *codename))
        .unwrap_or_else(|| panic!("{image}: no Debian release in the tag"))
}

/// The builder and runtime stages: the runtime is the last stage, the builder the stage it
/// copies the binary from.
fn stages() -> (Stage, Stage, String, String) {
    let mut stages = dockerfile();
    assert!(
        stages.len() >= 2,
        "a multi-stage build: {} stage(s)",
        stages.len()
    );
    let runtime = stages.pop().expect("a last stage");
    let (from, source, dest) = runtime
        .copies()
        .into_iter()
        .find_map(|(flags, sources, dest)| {
            let from = flags.iter().find_map(|f| f.strip_prefix("--from="))?;
            let source = sources.first()?;
            source
                .ends_with(&format!("/{BIN_NAME}"))
                .then(|| (from.to_string(), source.clone(), dest))
        })
        .expect("the runtime stage copies the binary from a build stage");
    let builder = stages
        .into_iter()
        .find(|s| s.alias.as_deref() == Some(from.as_str()))
        .unwrap_or_else(|| panic!("no stage named {from}"));
    (builder, runtime, source, dest)
}

/// The words of the builder's `RUN cargo build …`.
fn cargo_build_command(builder: &Stage) -> Vec<String> {
    let run = builder
        .all("RUN")
        .find(|r| r.trim_start().starts_with("cargo build"))
        .expect("the builder stage runs `cargo build`");
    assert!(
        !run.contains("&&") && !run.contains(';'),
        "one plain command: {run}"
    );
    run.split_whitespace().map(str::to_string).collect()
}

fn runtime_stage_runs_the_release_binary_as_a_non_root_user() {
    let (builder, runtime, source, dest) = stages();

    // The builder: Rust 1.95, building the locked release binary.
    assert!(
        builder.image.starts_with("rust:1.95-"),
        "builder image {}",
        builder.image
    );
    let build = cargo_build_command(&builder);
    for flag in ["--locked", "--release"] {
        assert!(build.iter().any(|w| w == flag), "{build:?} lacks {flag}");
    }

    // The runtime: slim Debian of the same release, so glibc matches the one linked against.
    assert_eq!(runtime.image, "debian:bookworm-slim");
    assert_eq!(
        debian_release(&builder.image),
        debian_release(&runtime.image),
        "builder and runtime must be the same Debian release"
    );

    // It copies the very file the builder's `cargo build --release` makes.
    assert_eq!(
        source,
        format!("{}/target/release/{BIN_NAME}", builder.workdir()),
        "the COPY source is not the release binary of the builder's WORKDIR"
    );
    assert_eq!(dest, format!("/usr/local/bin/{BIN_NAME}"));

    // The CA bundle `sslrootcert=system` reads (rustls-native-certs looks for Debian's file first),
    // from the builder, whose Rust image has Debian's ca-certificates; bookworm-slim has none.
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    let from_builder = format!("--from={}", builder.alias.as_deref().unwrap_or_default());
    assert!(
        runtime.copies().iter().any(|(flags, sources, dest)| {
            flags.contains(&from_builder) && sources.iter().any(|s| s == bundle) && dest == bundle
        }),
        "the runtime stage has no CA bundle at {bundle}"
    );

    // A non-root user, created in this stage.
    let user = runtime.last("USER").expect("the runtime stage sets USER");
    let name = user.split(':').next().unwrap_or(user);
    assert!(
        name != "root" && name != "0" && !name.is_empty(),
        "runs as {user}"
    );
    let creates_user = runtime.all("RUN").any(|r| {
        r.contains("useradd") && r.split_whitespace().any(|w| w == name) && !r.contains("--uid 0 ")
    });
    assert!(creates_user, "no `useradd … {name}` in the runtime stage");

    // The binary is the entrypoint, by its name on PATH or by the path it was copied to.
    let entrypoint = exec_form(runtime.last("ENTRYPOINT").expect("an ENTRYPOINT"));
    assert!(
        entrypoint
            .first()
            .is_some_and(|e| *e == dest || e == BIN_NAME),
        "ENTRYPOINT {entrypoint:?} is not {dest}"
    );

    // Volumes for the bundle and the backups, and BACKUP_DIR pointing at the latter.
    let volumes: Vec<String> = runtime.all("VOLUME").flat_map(exec_form).collect();
    let env = runtime.env();
    let backup_dir = env
        .iter()
        .find(|(k, _)| k == "BACKUP_DIR")
        .map(|(_, v)| v.clone())
        .expect("ENV BACKUP_DIR");
    assert!(
        volumes.contains(&backup_dir),
        "BACKUP_DIR {backup_dir} is not a volume: {volumes:?}"
    );
    assert!(volumes.iter().any(|v| v == "/bundle"), "{volumes:?}");
    // The user owns where it writes: the backups volume and the working directory (run logs).
    let chown = runtime
        .all("RUN")
        .find(|r| r.contains("chown"))
        .expect("the runtime stage gives its directories to the user");
    for dir in [backup_dir.as_str(), runtime.workdir()] {
        assert!(
            chown.split_whitespace().any(|w| w == dir),
            "{dir} is not chowned: {chown}"
        );
    }
}

fn dockerignore_keeps_build_output_out_but_not_what_the_builder_copies() {
    let (builder, ..) = stages();
    let ignore = fs::read_to_string(Path::new(ROOT).join(".dockerignore")).expect(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for needed in ["target", ".git"] {
        assert!(patterns.contains(&needed), "{needed} is sent to the daemon");
    }
    for (flags, sources, _) in builder.copies() {
        assert!(flags.is_empty(), "the builder copies from the context only");
        for source in sources {
            let first = source.trim_start_matches("./").split('/').next();
            assert!(
                !patterns.iter().any(|p| Some(*p) == first),
                "{source} is copied by the builder but excluded by .dockerignore"
            );
        }
    }
}

fn yaml_str<'a>(node: &'a Yaml, key: &str) -> Option<&'a str> {
    node[key].as_str()
}

fn compose_example_runs_the_image_next_to_postgres_with_bundle_and_backups_as_volumes() {
    let text = fs::read_to_string(Path::new(ROOT).join("docker-compose.example.yml"))
        .expect("docker-compose.example.yml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let services = &docs[0]["services"];
    let (_, runtime, ..) = stages();

    let postgres = &services["postgres"];
    assert!(
        yaml_str(postgres, "image").is_some_and(|i| i.starts_with("postgres:")),
        "a PostgreSQL service: {postgres:?}"
    );
    let migrate = &services["migrate"];
    assert_eq!(
        yaml_str(migrate, "build"),
        Some("."),
        "built from this Dockerfile"
    );
    assert!(
        !migrate["depends_on"]["postgres"].is_badvalue(),
        "migrate waits for postgres"
    );

    // DATABASE_URL reaches the postgres service by its name, with the password interpolated
    // from the environment, never written into the file.
    let url = yaml_str(&migrate["environment"], "DATABASE_URL").expect("DATABASE_URL");
    let rest = url.strip_prefix("postgres://").expect("a postgres:// URL");
    let (credentials, host) = rest.split_once('@').expect("user and password");
    let password = credentials.split_once(':').map_or("", |(_, p)| p);
    assert!(
        password.starts_with("${"),
        "the password must come from the environment"
    );
    assert!(host.starts_with("postgres:") || host.starts_with("postgres/"));
    assert!(!text.contains("POSTGRES_PASSWORD: secret"));

    // The image's BACKUP_DIR is where the host's backups directory is mounted.
    let backup_dir = runtime
        .env()
        .into_iter()
        .find(|(k, _)| k == "BACKUP_DIR")
        .map(|(_, v)| v)
        .expect("ENV BACKUP_DIR");
    assert_eq!(
        yaml_str(&migrate["environment"], "BACKUP_DIR"),
        Some(backup_dir.as_str())
    );
    let mounts: Vec<(String, String)> = migrate["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .map(|v| {
            let mut parts = v.split(':');
            let host = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default().to_string();
            let mode = parts.next().unwrap_or("rw").to_string();
            (format!("{host}:{target}"), mode)
        })
        .collect();
    let target = |t: &str| mounts.iter().find(|(m, _)| m.ends_with(&format!(":{t}")));
    assert!(
        target(&backup_dir).is_some_and(|(_, mode)| mode == "rw"),
        "{mounts:?}"
    );
    assert!(
        target("/bundle").is_some_and(|(_, mode)| mode == "ro"),
        "the bundle is mounted read-only: {mounts:?}"
    );
    assert!(
        target(&format!("{}/migration-logs", runtime.workdir())).is_some(),
        "run logs are kept: {mounts:?}"
    );
}

/// Copies `source` (a file or a directory, relative to the repository) to `dest`.
fn copy_into(source: &Path, dest: &Path) {
    if source.is_dir() {
        fs::create_dir_all(dest).expect("create directory");
        for entry in fs::read_dir(source).expect("read directory") {
            let entry = entry.expect("directory entry");
            copy_into(&entry.path(), &dest.join(entry.file_name()));
        }
    } else {
        fs::copy(source, dest).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
    }
}

/// Lays out the builder's WORKDIR as its COPY lines do, from this repository.
fn builder_context(builder: &Stage, context: &Path) {
    if context.exists() {
        fs::remove_dir_all(context).expect("clear the old context");
    }
    fs::create_dir_all(context).expect("create the context");
    for (_, sources, dest) in builder.copies() {
        let dest = context.join(dest.trim_start_matches("./"));
        for source in &sources {
            let from = Path::new(ROOT).join(source);
            let to = if sources.len() > 1 || dest.as_os_str().to_string_lossy().ends_with('/') {
                dest.join(from.file_name().expect("a file name"))
            } else {
                dest.clone()
            };
            copy_into(&from, &to);
        }
    }
}

fn tool_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (binutils): {e}"));
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replays the builder stage (its COPY lines, ENV and `cargo build`) in a directory of its own, so
/// a file the build needs but the Dockerfile does not copy fails here as it would in `docker
/// build`; then checks the binary against the runtime image.
fn builder_stage_makes_a_binary_whose_libraries_the_runtime_image_ships() {
    let (builder, _runtime, source, _) = stages();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("container");
    let context = work.join("context");
    builder_context(&builder, &context);

    let command = cargo_build_command(&builder);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = work.join("target");
    let built = Command::new(&cargo)
        .args(&command[1..])
        .current_dir(&context)
        .envs(builder.env())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("run cargo");
    assert!(
        built.success(),
        "`{}` failed in a context holding only what the Dockerfile copies",
        command.join(" ")
    );

    // The COPY source, relative to the builder's WORKDIR, is this file.
    let relative = source
        .strip_prefix(&format!("{}/target/", builder.workdir()))
        .expect("COPY source under WORKDIR/target");
    let binary: PathBuf = target_dir.join(relative);
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("the release binary runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION"))
    );
    let size = fs::metadata(&binary).expect("binary metadata").len();
    eprintln!(
        "release binary {}: {size} bytes ({} MiB)",
        binary.display(),
        size / (1024 * 1024)
    );

    let binary_text = binary.to_string_lossy().into_owned();
    let dynamic = tool_output("readelf", &["--dynamic", "--wide", &binary_text]);
    let needed: Vec<String> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect();
    assert!(
        needed.iter().any(|l| l == "libc.so.6"),
        "a dynamically linked glibc binary: {needed:?}"
    );
    for lib in &needed {
        assert!(
            BOOKWORM_SLIM_LIBS.contains(&lib.as_str()),
            "{lib} is not in debian:bookworm-slim: the binary would not start there"
        );
    }
    let headers = tool_output("readelf", &["--program-headers", "--wide", &binary_text]);
    let interpreter = headers
        .lines()
        .find_map(|l| l.split_once("program interpreter: ")?.1.strip_suffix(']'))
        .expect("a program interpreter");
    let interpreter_name = interpreter.rsplit('/').next().unwrap_or(interpreter);
    assert!(
        BOOKWORM_SLIM_LIBS.contains(&interpreter_name),
        "{interpreter}"
    );

    // No symbol from a glibc newer than bookworm's.
    let versions = tool_output("readelf", &["--version-info", "--wide", &binary_text]);
    let newest = versions
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .expect("glibc symbol versions");
    assert!(
        newest <= BOOKWORM_GLIBC,
        "needs GLIBC_{}.{}, bookworm has {}.{}",
        newest.0,
        newest.1,
        BOOKWORM_GLIBC.0,
        BOOKWORM_GLIBC.1
    );

    // Where this machine is Debian, ask dpkg which packages the libraries resolved to come from.
    if Path::new("/var/lib/dpkg/status").exists() {
        let ldd = tool_output("ldd", &[&binary_text]);
        for path in ldd
            .split_whitespace()
            .filter(|w| w.starts_with('/') && w.contains(".so"))
        {
            let owner = Command::new("dpkg")
                .args(["-S", path])
                .output()
                .expect("dpkg runs");
            let owner = String::from_utf8_lossy(&owner.stdout);
            let package = owner.split(':').next().unwrap_or("").trim();
            assert!(
                BOOKWORM_SLIM_LIB_PACKAGES.contains(&package),
                "{path} comes from {package:?}, which debian:bookworm-slim does not have"
            );
        }
    }
}
