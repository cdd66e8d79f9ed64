################################################################################
#
# assent
#
################################################################################

# A release tarball of the source tree (Cargo.lock included). The cargo-package
# infrastructure vendors every crate at download time (support/download/cargo-post-process)
# into the archive Buildroot caches, so the build itself runs offline. Add the hash of
# that vendored archive to assent.hash after the first `make assent-source`.
ASSENT_VERSION = 0.1.0
ASSENT_SITE = https://example.invalid/assent/releases/download/v$(ASSENT_VERSION)
ASSENT_SOURCE = assent-$(ASSENT_VERSION).tar.gz
ASSENT_LICENSE = Apache-2.0
# No LICENSE file in the tree yet: point this at it once there is one.
# ASSENT_LICENSE_FILES = LICENSE

# The default cargo-package build runs `cargo build --release` on the root manifest,
# which is a virtual workspace manifest, and installs with `cargo install --path`, which
# refuses one. So build and install explicitly: the agent only (the collector is a
# server program), with the shipping profile ([profile.dist] in Cargo.toml: LTO, one
# codegen unit, panic=abort, opt-level "z", stripped). PKG_CARGO_ENV supplies the
# cross linker and CC for the C parts (bundled SQLite, ring); the project's own
# .cargo/config.toml adds the SQLite compile options ([env] LIBSQLITE3_FLAGS), and its
# [target.*] entries do not clash with Buildroot's (they only set linker and runner,
# which PKG_CARGO_ENV overrides through CARGO_TARGET_<TRIPLE>_LINKER).
define ASSENT_BUILD_CMDS
	cd $(@D) && $(TARGET_MAKE_ENV) $(PKG_CARGO_ENV) \
		cargo build --offline --locked --profile dist \
			--target $(RUSTC_TARGET_NAME) -p assent --bins
endef

# The binary, the commented example config as the live config, and the systemd unit
# (configs/assent.service, from the daemon work) when systemd is the init system.
define ASSENT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/dist/assent \
		$(TARGET_DIR)/usr/bin/assent
	$(INSTALL) -D -m 0644 $(@D)/configs/assent.toml \
		$(TARGET_DIR)/etc/assent/assent.toml
endef

# Enabled at boot is safe: nothing is collected until the owner consents.
define ASSENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/configs/assent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/assent.service
endef

$(eval $(cargo-package))
