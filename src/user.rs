//! Who is running the tool, for the run record ("who" in `runs show`).
//!
//! The login variables come first. A container or a cron job often sets none of them, and then the
//! process's user id is looked up in `/etc/passwd` by hand: a user *name* is what a treasurer
//! recognises in the history, and reading one text file needs no dependency (no `libc`, no NSS).
//! Users that only a directory service knows (LDAP, `systemd-homed`) are shown as `uid N`.

use std::path::Path;

/// The user name for the run record: `USER`, `LOGNAME` or `USERNAME`, else the name of this
/// process's user id in `/etc/passwd`, else `uid N`, else `unknown`.
pub fn invoked_by() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| {
            let uid = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| uid_of_status(&status))?;
            Some(name_in_passwd_file(Path::new("/etc/passwd"), uid).unwrap_or(format!("uid {uid}")))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The real user id from the text of `/proc/self/status` (`Uid:\treal\teffective\t…`).
fn uid_of_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

fn name_in_passwd_file(passwd: &Path, uid: u32) -> Option<String> {
    name_in_passwd(&std::fs::read_to_string(passwd).ok()?, uid)
}

/// The first user named for `uid` in passwd(5) text (`name:password:uid:gid:gecos:home:shell`).
fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let line_uid: u32 = fields.next()?.parse().ok()?;
            (line_uid == uid && !name.is_empty()).then(|| name.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
broken line
:x:7:7::/:/bin/false
nouid:x:abc:1::/:/bin/false
treasurer:x:1000:1000:Ada Treasurer,,,:/home/treasurer:/bin/bash
habitat:x:10001:10001::/work:/usr/sbin/nologin
";

    #[test]
    fn a_uid_is_named_by_its_passwd_line() {
        assert_eq!(name_in_passwd(PASSWD, 0).as_deref(), Some("root"));
        assert_eq!(name_in_passwd(PASSWD, 1000).as_deref(), Some("treasurer"));
        assert_eq!(name_in_passwd(PASSWD, 10001).as_deref(), Some("habitat"));
    }

    #[test]
    fn an_unknown_uid_or_a_nameless_line_names_nobody() {
        assert_eq!(name_in_passwd(PASSWD, 4242), None);
        assert_eq!(name_in_passwd(PASSWD, 7), None);
        assert_eq!(name_in_passwd("", 0), None);
    }

    #[test]
    fn the_real_uid_is_read_from_proc_status() {
        let status = "Name:\tx\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(uid_of_status(status), Some(1000));
        assert_eq!(uid_of_status("Name:\tx\n"), None);
        assert_eq!(uid_of_status("Uid:\tlots\n"), None);
    }
}
