#!/bin/bash
# dist-check: the release as an operator meets it. Usage: check.sh DIST_OUT
# (a finished make dist). Installs the .deb on this machine and purges it,
# checks the .rpm with rpm in a scratch root, runs install.sh without network
# into a scratch root and with an old kernel. Needs root.
set -euo pipefail
out=$(cd "$1" && pwd)
scratch=$(mktemp -d /tmp/tandem-dist-check.XXXXXX)
trap 'dpkg --purge tandem-agent tandem-target tandemctl >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
fail() { echo "dist-check: FAIL: $*" >&2; exit 1; }
deb() { ls "$out"/packages/"$1"_*.deb; }
rpmf() { ls "$out"/packages/"$1"-[0-9]*.rpm; }

# 1. The .debs install here; the units verify; the installed binary answers.
for p in tandem-target tandem-agent tandemctl; do dpkg-query -W "$p" >/dev/null 2>&1 && fail "$p is already installed here: dpkg --purge $p first"; done
paths="$scratch/paths"
dpkg-deb -c "$(deb tandem-target)" >"$paths.raw"; dpkg-deb -c "$(deb tandem-agent)" >>"$paths.raw"; dpkg-deb -c "$(deb tandemctl)" >>"$paths.raw"
awk '{print substr($6, 2)}' "$paths.raw" | sed 's|/$||' | grep -v '^$' | sort -u >"$paths"
absent="$scratch/absent"
while read -r f; do [ -e "$f" ] || [ -L "$f" ] || echo "$f"; done <"$paths" >"$absent"
dpkg -i "$(deb tandem-target)" "$(deb tandem-agent)" "$(deb tandemctl)" >/dev/null
systemd-analyze verify /usr/lib/systemd/system/tandem-target.service /usr/lib/systemd/system/tandem-agent.service \
	|| fail "systemd-analyze verify rejects a unit"
/usr/sbin/tandem-agent --version | grep -q '^tandem-agent ' || fail "tandem-agent --version from /usr/sbin"
/usr/sbin/tandem-target --version | grep -q '^tandem-target ' || fail "tandem-target --version"
/usr/bin/tandemctl --version | grep -q '^tandemctl ' || fail "tandemctl --version"
for f in /etc/tandem/target.yaml /etc/tandem/agent.yaml; do
	dpkg-query -W -f='${Conffiles}\n' tandem-target tandem-agent | grep -q " $f " || fail "$f is not a conffile"
done
test -x /usr/lib/ocf/resource.d/tandem/ibmmq && test -x /usr/lib/tandem/ocf-ibmmq || fail "OCF agent not installed"
test "$(readlink /etc/ha.d/resource.d/mq)" = /usr/lib/tandem/mq || fail "heartbeat's resource.d/mq link"
test -d /var/lib/tandem || fail "state directory"
test -f /usr/share/man/man1/tandem-agent.1.gz || fail "man page"
test -f /usr/share/bash-completion/completions/tandemctl || fail "bash completion"
dpkg -L tandem-target tandem-agent tandemctl | grep -qi 'mqstub\|mqrestest' && fail "a test double is packaged"
dpkg --purge tandem-agent tandem-target tandemctl >/dev/null
# Nothing of ours is left: every path the packages brought is gone. dpkg
# keeps a directory that holds files it never installed (another program's
# state under /var/lib/tandem): named, not failed.
while read -r f; do
	if [ -L "$f" ] || [ -f "$f" ]; then fail "left after purge: $f"; fi
	if [ -d "$f" ]; then
		if [ -z "$(ls -A "$f")" ]; then fail "empty directory left after purge: $f"; fi
		echo "dist-check: note: $f kept by dpkg, it holds files not from the packages: $(ls -A "$f" | tr '\n' ' ')"
	fi
done <"$absent"
echo "dist-check: deb: installed, units verified, --version ok, purged without a trace"

# 2. The .rpm: its file list, and an install into a scratch root.
for p in tandem-target tandem-agent tandemctl; do
	rpm -qpl "$(rpmf $p)" >"$scratch/$p.rpm.list" 2>/dev/null
done
grep -qx /usr/sbin/tandem-agent "$scratch/tandem-agent.rpm.list" || fail "rpm file list lacks /usr/sbin/tandem-agent"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$(rpmf tandem-agent)" 2>/dev/null | grep -q '^cn /etc/tandem/agent.yaml' \
	|| fail "agent.yaml is not %config(noreplace) in the rpm"
test -z "$(rpm -qp --requires "$(rpmf tandem-agent)" 2>/dev/null | grep -v '^rpmlib(')" || fail "the rpm has runtime dependencies"
mkdir -p "$scratch/rpmroot"
rpm --root "$scratch/rpmroot" --dbpath /var/lib/rpm --initdb 2>/dev/null
rpm --root "$scratch/rpmroot" --nodeps --noscripts -i "$(rpmf tandem-target)" "$(rpmf tandem-agent)" "$(rpmf tandemctl)" 2>/dev/null
"$scratch/rpmroot/usr/sbin/tandem-agent" --version | grep -q '^tandem-agent ' || fail "tandem-agent from the rpm root"
echo "dist-check: rpm: file list, noreplace config, no dependency, installs into a scratch root"

# 3. install.sh: no network, a scratch root with dpkg's database and a
# static shell for the maintainer scripts; then a RHEL 6 kernel.
bundle=$(ls "$out"/tandem-*-linux-amd64.tar.gz)
tar -xzf "$bundle" -C "$scratch"
dir=$(ls -d "$scratch"/tandem-*-linux-amd64)
root="$scratch/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/bin"
touch "$root/var/lib/dpkg/status"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
unshare -n sh "$dir/install.sh" --root "$root" node >"$scratch/install.out" 2>&1 || { cat "$scratch/install.out"; fail "install.sh node"; }
grep -q 'tandemctl doctor' "$scratch/install.out" || fail "install.sh does not say what to do next"
test -x "$root/usr/sbin/tandem-agent" || fail "install.sh did not install tandem-agent"
mkdir -p "$scratch/oldkernel"
printf '#!/bin/sh\necho 2.6.32-754.el6.x86_64\n' >"$scratch/oldkernel/uname"
chmod +x "$scratch/oldkernel/uname"
if PATH="$scratch/oldkernel:$PATH" unshare -n sh "$dir/install.sh" --root "$root" node >"$scratch/old.out" 2>&1; then
	fail "install.sh accepted a 2.6.32 kernel"
fi
grep -q "Go's runtime needs Linux >= 3.2, so RHEL 6 (2.6.32) cannot run tandem; RHEL 7+ and Debian 9+ can" "$scratch/old.out" \
	|| fail "install.sh refused 2.6.32 without the sentence: $(cat "$scratch/old.out")"
echo "dist-check: install.sh: dpkg path without network into a scratch root, 2.6.32 refused"
