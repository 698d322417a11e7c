//! The PostgreSQL image: Debian's server binaries with their libraries, its share files, the time
//! zone data and busybox (Debian's `busybox-static`) for the entrypoint, which starts the server
//! the way the official image does: `POSTGRES_PASSWORD`, `POSTGRES_HOST_AUTH_METHOD`, port 5432, the "ready to accept
//! connections" log line, `postgres -c ...` arguments passed through.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{RootFs, present};

/// The entrypoint: initialise the data folder on first start, then run the server as `postgres`.
const ENTRYPOINT: &str = r#"#!/bin/sh
set -e
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
bin=@BIN@
[ "$1" = postgres ] && shift
# As the official image: POSTGRES_HOST_AUTH_METHOD, scram-sha-256 unless told otherwise.
auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
# Runs a command as the postgres user, its arguments passed as they are (POSIXLY_CORRECT stops
# su's option parsing at the user name, so `-D` and `-c` reach the command).
as_postgres() {
    POSIXLY_CORRECT=1 su -p -s /bin/sh -c 'unset POSIXLY_CORRECT; exec "$0" "$@"' postgres "$@"
}
mkdir -p "$PGDATA" /var/run/postgresql /tmp
chmod 1777 /tmp
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ]; then
        echo "error: set POSTGRES_PASSWORD, as for the official postgres image" >&2
        exit 1
    fi
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    as_postgres "$bin/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" \
        --pwfile=/tmp/pwfile --auth-local=trust --auth-host="$auth" -E UTF8 --no-locale >/dev/null
    rm -f /tmp/pwfile
    echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "PostgreSQL init process complete; ready for start up."
fi
export POSIXLY_CORRECT=1
exec su -p -s /bin/sh -c 'unset POSIXLY_CORRECT; exec "$0" "$@"' postgres "$bin/postgres" -D "$PGDATA" "$@"
"#;

/// The newest `/usr/lib/postgresql/N` of this machine.
fn server_dir() -> anyhow::Result<(PathBuf, String)> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install Debian's postgresql package")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().parse().ok()?;
            e.path()
                .join("bin/postgres")
                .is_file()
                .then(|| (n, e.path()))
        })
        .collect();
    versions.sort();
    let Some((n, dir)) = versions.pop() else {
        bail!(
            "no PostgreSQL server under /usr/lib/postgresql: install Debian's postgresql package"
        );
    };
    Ok((dir, n.to_string()))
}

/// Builds the image unless the engine has it; its name.
pub(crate) fn build(work: &Path) -> anyhow::Result<String> {
    let (dir, version) = server_dir()?;
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        bail!("no /bin/busybox: install Debian's busybox-static package");
    }
    let mut root = RootFs::new(&work.join("postgres"))?;
    for bin in ["postgres", "initdb", "pg_ctl"] {
        root.copy_with_libraries(&dir.join("bin").join(bin))?;
    }
    root.copy(&dir.join("lib"))?;
    root.copy(&PathBuf::from(format!("/usr/share/postgresql/{version}")))?;
    root.copy(Path::new("/usr/share/zoneinfo"))?;
    root.copy(busybox)?;
    for applet in [
        "sh", "mkdir", "chmod", "chown", "rm", "su", "echo", "printf", "cat",
    ] {
        root.link(&format!("/bin/{applet}"), "/bin/busybox")?;
    }
    let bin_dir = dir.join("bin").display().to_string();
    root.write(
        "/entrypoint.sh",
        &ENTRYPOINT.replace("@BIN@", &bin_dir),
        0o755,
    )?;
    root.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
        0o644,
    )?;
    root.write("/etc/group", "root:x:0:\npostgres:x:999:\n", 0o644)?;
    root.write(
        "/etc/shadow",
        "root:*:19000::::::\npostgres:*:19000::::::\n",
        0o640,
    )?;
    root.mkdir("/var/lib/postgresql/data")?;
    root.mkdir("/var/run/postgresql")?;
    root.mkdir("/tmp")?;
    let changes = [
        "ENTRYPOINT [\"/entrypoint.sh\"]",
        "CMD [\"postgres\"]",
        "EXPOSE 5432",
        "ENV PGDATA=/var/lib/postgresql/data",
        "ENV TZ=UTC",
        "LABEL org.opencontainers.image.description=\"PostgreSQL from Debian's packages, built by cargo xtask images\"",
    ];
    let name = format!(
        "billing-harness/postgres:{version}-{}",
        root.hash(&changes.join("\n"))?
    );
    if present(&name) {
        eprintln!("{name}: present, skipped");
        return Ok(name);
    }
    eprintln!("{name}: building from {} ...", dir.display());
    root.import(&name, &changes)?;
    eprintln!("{name}: built");
    Ok(name)
}
