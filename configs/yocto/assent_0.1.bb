# Assent for Yocto / OpenEmbedded: drop this file (and the generated assent-crates.inc)
# into recipes-support/assent/ of your layer, then add "assent" to IMAGE_INSTALL.
#
# Rust: the workspace needs Rust 1.85 or later (rust-version in Cargo.toml). Check your
# release's compiler with `bitbake -e rust-native | grep ^PV=`; a release that ships an
# older one needs a newer Rust from a mixin layer (for example meta-lts-mixins).
#
# Crates: bitbake builds offline, so every crate in Cargo.lock must be in SRC_URI as a
# crate:// URL with its checksum. Generate assent-crates.inc beside this file with
#   - OE-core (kirkstone and later): inherit cargo-update-recipe-crates (below), then
#     `bitbake -c update_crates assent`; or
#   - cargo-bitbake (crates.io: `cargo install cargo-bitbake`), run in the source tree:
#     `cargo bitbake`, and copy its SRC_URI crate lines into assent-crates.inc.
# Regenerate it whenever Cargo.lock changes.
#
# C parts: bundled SQLite and ring are compiled by the cc crate with the target gcc that
# cargo.bbclass exports; nothing else is needed. The SQLite options the project ships
# with come from the source tree's .cargo/config.toml ([env] LIBSQLITE3_FLAGS), which
# cargo reads here too; its [target.*] linker/runner entries name Rust's own triples, not
# ${RUST_HOST_SYS}, so they do not interfere.

SUMMARY = "Assent: consent-gated telemetry agent for embedded Linux devices"
DESCRIPTION = "Collects device facts only under the owner's recorded consent, \
buffers them in SQLite and sends them over TLS when connectivity allows."
HOMEPAGE = "https://example.invalid/assent"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

# Pin a release commit; AUTOREV would break reproducible builds and the crate list.
SRC_URI = "git://example.invalid/assent.git;protocol=https;branch=main"
SRCREV = "0000000000000000000000000000000000000000"
S = "${WORKDIR}/git"

inherit cargo cargo-update-recipe-crates systemd

require ${BPN}-crates.inc

# The workspace root is a virtual manifest; build only the device agent (the collector
# is a server program and does not belong on the device).
CARGO_BUILD_FLAGS += "-p assent --bins"

# The shipping profile's settings ([profile.dist] in Cargo.toml) applied to the release
# profile that cargo.bbclass builds. Stripping is left to bitbake, so that the -dbg
# package still gets the symbols.
export CARGO_PROFILE_RELEASE_LTO = "true"
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS = "1"
export CARGO_PROFILE_RELEASE_PANIC = "abort"
export CARGO_PROFILE_RELEASE_OPT_LEVEL = "z"

# cargo.bbclass would install every binary of the workspace; install what the device
# needs: the agent, its config (the commented example, as a conffile the operator edits)
# and the systemd unit (configs/assent.service, from the daemon work).
do_install() {
    install -D -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/assent ${D}${bindir}/assent
    install -D -m 0644 ${S}/configs/assent.toml ${D}${sysconfdir}/assent/assent.toml
    install -D -m 0644 ${S}/configs/assent.service ${D}${systemd_system_unitdir}/assent.service
}

CONFFILES:${PN} = "${sysconfdir}/assent/assent.toml"
SYSTEMD_SERVICE:${PN} = "assent.service"
# Enabled at boot is safe: the agent collects nothing until the owner has consented
# (`assent consent grant ...`).
SYSTEMD_AUTO_ENABLE:${PN} = "enable"
