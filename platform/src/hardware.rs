//! The `hardware` category: who made the device and what it is built from.
//!
//! Sources: DMI (`/sys/class/dmi/id`, non-identifying attributes only), the device tree
//! (`model`, `compatible`), `/sys/devices/soc0`, `/proc/cpuinfo`, `/proc/meminfo`,
//! `/sys/block`, DRM connectors and the first framebuffer. Serial numbers, UUIDs and
//! asset tags are never opened here, and the `Serial` line of `/proc/cpuinfo` is
//! skipped while parsing: hardware identifiers belong to the `device_id` category,
//! which only ever sends them de-identified.

use crate::field::{parse_line, parse_nul_strings, parse_u64, truncate_for_reason, Field};
use crate::read::{ATTRIBUTE_LIMIT, TEXT_LIMIT};
use crate::Root;
use serde::{Deserialize, Serialize};

/// What the device is: vendor, model, CPU, memory, storage and displays.
///
/// Flat on purpose: DMI attribute names are kept as they are (`sys_vendor`,
/// `product_name`), other sources get a prefix that names them (`devicetree_`, `soc_`,
/// `cpuinfo_`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// Best vendor name: DMI `sys_vendor`, else the vendor prefix of the first device
    /// tree `compatible` string (for example `raspberrypi`, `fsl`).
    pub vendor: Field<String>,
    /// Best model name: DMI `product_name`, else device tree `model`, else the
    /// `Model` line of `/proc/cpuinfo`, else `soc0/machine`.
    pub model: Field<String>,

    /// DMI `sys_vendor`.
    pub sys_vendor: Field<String>,
    /// DMI `product_name`.
    pub product_name: Field<String>,
    /// DMI `product_version`.
    pub product_version: Field<String>,
    /// DMI `product_family`.
    pub product_family: Field<String>,
    /// DMI `board_vendor`.
    pub board_vendor: Field<String>,
    /// DMI `board_name`.
    pub board_name: Field<String>,
    /// DMI `bios_vendor`.
    pub bios_vendor: Field<String>,
    /// DMI `bios_version`.
    pub bios_version: Field<String>,
    /// DMI `bios_date`.
    pub bios_date: Field<String>,
    /// The SMBIOS chassis type number as the kernel gives it.
    pub chassis_type: Field<u8>,
    /// The SMBIOS name of `chassis_type` (`Desktop`, `Laptop`, ...).
    pub chassis_type_name: Field<String>,

    /// Device tree `model`.
    pub devicetree_model: Field<String>,
    /// Device tree `compatible`, most specific first.
    pub devicetree_compatible: Field<Vec<String>>,

    /// `/sys/devices/soc0/machine`.
    pub soc_machine: Field<String>,
    /// `/sys/devices/soc0/family`.
    pub soc_family: Field<String>,
    /// `/sys/devices/soc0/soc_id`.
    pub soc_id: Field<String>,
    /// `/sys/devices/soc0/revision`.
    pub soc_revision: Field<String>,

    /// `model name` on x86; on ARM the core name derived from implementer and part
    /// (`Cortex-A72`), else the kernel's name, else `implementer/part` raw.
    pub cpu_model: Field<String>,
    /// `vendor_id` on x86 (`GenuineIntel`); on ARM the implementer's name.
    pub cpu_vendor: Field<String>,
    /// ARM `CPU implementer`, raw (`0x41`).
    pub cpu_implementer: Field<String>,
    /// ARM `CPU part`, raw (`0xd08`).
    pub cpu_part: Field<String>,
    /// Number of `processor` entries in `/proc/cpuinfo`.
    pub cpu_logical_count: Field<u32>,
    /// `uname -m`; only on the live system, never guessed from files.
    pub cpu_architecture: Field<String>,
    /// The board line `Hardware` of `/proc/cpuinfo` (ARM kernels, `BCM2835`).
    pub cpuinfo_hardware: Field<String>,
    /// The board revision code `Revision` of `/proc/cpuinfo` (Raspberry Pi).
    pub cpuinfo_revision: Field<String>,
    /// The board name `Model` of `/proc/cpuinfo` (Raspberry Pi).
    pub cpuinfo_model: Field<String>,

    /// `MemTotal` in bytes.
    pub memory_total_bytes: Field<u64>,
    /// `SwapTotal` in bytes.
    pub swap_total_bytes: Field<u64>,

    /// Whole disks from `/sys/block`, without loop, RAM, zram, device-mapper devices,
    /// partitions and eMMC boot/RPMB areas.
    pub storage: Field<Vec<Disk>>,
    /// DRM connectors.
    pub displays: Field<Vec<Display>>,
    /// Width in pixels of `/sys/class/graphics/fb0/virtual_size`.
    pub framebuffer_width: Field<u32>,
    /// Height in pixels of `/sys/class/graphics/fb0/virtual_size`.
    pub framebuffer_height: Field<u32>,
}

/// One whole disk under `/sys/block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Kernel name (`sda`, `mmcblk0`, `nvme0n1`).
    pub name: String,
    /// `size` (512-byte sectors whatever the device's block size) in bytes.
    pub size_bytes: Field<u64>,
    /// `removable`: media can be taken out (SD readers, USB sticks).
    pub removable: Field<bool>,
    /// `queue/rotational`: a spinning disk.
    pub rotational: Field<bool>,
    /// `device/model` (SCSI, NVMe), else `device/name` (MMC/SD).
    pub model: Field<String>,
    /// `device/vendor` (SCSI: `ATA` for SATA disks).
    pub vendor: Field<String>,
}

/// One DRM connector (`card1-HDMI-A-1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    /// The card (`card1`).
    pub card: String,
    /// The connector without its card prefix (`HDMI-A-1`).
    pub connector: String,
    /// `connected`, `disconnected` or `unknown`.
    pub status: Field<String>,
    /// Width in pixels of the preferred (first) mode; absent when no mode is listed.
    pub width: Field<u32>,
    /// Height in pixels of the preferred (first) mode.
    pub height: Field<u32>,
}

/// Reads the `hardware` category under `root`.
pub fn read(root: &Root) -> Hardware {
    let dmi = |name: &str| {
        Field::from_file(
            root,
            &format!("/sys/class/dmi/id/{name}"),
            ATTRIBUTE_LIMIT,
            parse_line,
        )
    };
    let soc = |name: &str| {
        Field::from_file(
            root,
            &format!("/sys/devices/soc0/{name}"),
            ATTRIBUTE_LIMIT,
            parse_line,
        )
    };

    let chassis_type = Field::from_file(
        root,
        "/sys/class/dmi/id/chassis_type",
        ATTRIBUTE_LIMIT,
        parse_chassis_type,
    );
    let chassis_type_name = match &chassis_type {
        Field::Present(n) => match chassis_type_name(*n) {
            Some(name) => Field::Present(name.to_string()),
            None => Field::Malformed(format!("unknown chassis type {n}")),
        },
        other => other.clone().map(|_| String::new()),
    };

    let devicetree_model = Field::from_file(
        root,
        "/sys/firmware/devicetree/base/model",
        ATTRIBUTE_LIMIT,
        parse_single_nul_string,
    );
    let devicetree_compatible = Field::from_file(
        root,
        "/sys/firmware/devicetree/base/compatible",
        ATTRIBUTE_LIMIT,
        parse_nul_strings,
    );

    let cpu = match root.read("/proc/cpuinfo", TEXT_LIMIT) {
        Ok(bytes) => parse_cpuinfo(&bytes),
        Err(e) => CpuInfo::all(&Field::from_read_error(e)),
    };
    let memory = match root.read("/proc/meminfo", TEXT_LIMIT) {
        Ok(bytes) => parse_meminfo(&bytes),
        Err(e) => {
            let state: Field<u64> = Field::from_read_error(e);
            MemInfo {
                mem_total_bytes: state.clone(),
                swap_total_bytes: state,
            }
        }
    };
    let (framebuffer_width, framebuffer_height) = split_pair(Field::from_file(
        root,
        "/sys/class/graphics/fb0/virtual_size",
        ATTRIBUTE_LIMIT,
        parse_virtual_size,
    ));

    let soc_machine = soc("machine");
    let sys_vendor = dmi("sys_vendor");
    let product_name = dmi("product_name");
    let compatible_vendor = match &devicetree_compatible {
        Field::Present(list) => match list.first().and_then(|c| c.split_once(',')) {
            Some((vendor, _)) => Field::Present(vendor.to_string()),
            None => Field::Absent,
        },
        other => other.clone().map(|_| String::new()),
    };
    let vendor = best_of(vec![sys_vendor.clone(), compatible_vendor]);
    let model = best_of(vec![
        product_name.clone(),
        devicetree_model.clone(),
        cpu.model.clone(),
        soc_machine.clone(),
    ]);

    Hardware {
        vendor,
        model,
        sys_vendor,
        product_name,
        product_version: dmi("product_version"),
        product_family: dmi("product_family"),
        board_vendor: dmi("board_vendor"),
        board_name: dmi("board_name"),
        bios_vendor: dmi("bios_vendor"),
        bios_version: dmi("bios_version"),
        bios_date: dmi("bios_date"),
        chassis_type,
        chassis_type_name,
        devicetree_model,
        devicetree_compatible,
        soc_machine,
        soc_family: soc("family"),
        soc_id: soc("soc_id"),
        soc_revision: soc("revision"),
        cpu_model: cpu.cpu_model(),
        cpu_vendor: cpu.cpu_vendor(),
        cpu_implementer: cpu.implementer,
        cpu_part: cpu.part,
        cpu_logical_count: cpu.logical_count,
        cpu_architecture: machine(root),
        cpuinfo_hardware: cpu.hardware,
        cpuinfo_revision: cpu.revision,
        cpuinfo_model: cpu.model,
        memory_total_bytes: memory.mem_total_bytes,
        swap_total_bytes: memory.swap_total_bytes,
        storage: read_storage(root),
        displays: read_displays(root),
        framebuffer_width,
        framebuffer_height,
    }
}

/// The first present, non-empty candidate; otherwise the first candidate that says
/// more than "absent" (a denied DMI file stays visible), otherwise absent.
fn best_of(candidates: Vec<Field<String>>) -> Field<String> {
    let mut fallback = Field::Absent;
    for candidate in candidates {
        match candidate {
            Field::Present(v) if !v.is_empty() => return Field::Present(v),
            Field::Present(_) | Field::Absent => {}
            other => {
                if fallback == Field::Absent {
                    fallback = other;
                }
            }
        }
    }
    fallback
}

fn split_pair(pair: Field<(u32, u32)>) -> (Field<u32>, Field<u32>) {
    match pair {
        Field::Present((w, h)) => (Field::Present(w), Field::Present(h)),
        other => (other.clone().map(|_| 0), other.map(|_| 0)),
    }
}

/// `uname().machine` on the live system; fixture roots have no such file.
fn machine(root: &Root) -> Field<String> {
    if !root.is_live() {
        return Field::Absent;
    }
    match nix::sys::utsname::uname() {
        Ok(uts) => match uts.machine().to_str() {
            Some(m) => Field::Present(m.to_string()),
            None => Field::Malformed("not valid UTF-8".to_string()),
        },
        Err(e) => Field::Malformed(format!("uname failed: {e}")),
    }
}

// ---- /proc/cpuinfo ------------------------------------------------------------------

/// What `/proc/cpuinfo` says, from the first processor block plus the board trailer.
/// The `Serial` line is deliberately not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// `model name` (x86, some ARM kernels) or old ARM kernels' `Processor`.
    pub model_name: Field<String>,
    /// `vendor_id` (x86).
    pub vendor_id: Field<String>,
    /// `CPU implementer` (ARM).
    pub implementer: Field<String>,
    /// `CPU part` (ARM).
    pub part: Field<String>,
    /// Number of `processor` entries.
    pub logical_count: Field<u32>,
    /// `Hardware` (ARM board line).
    pub hardware: Field<String>,
    /// `Revision` (Raspberry Pi board revision code).
    pub revision: Field<String>,
    /// `Model` (Raspberry Pi board name).
    pub model: Field<String>,
}

impl CpuInfo {
    /// Every field in the same state, for a file that could not be read.
    fn all(state: &Field<String>) -> CpuInfo {
        CpuInfo {
            model_name: state.clone(),
            vendor_id: state.clone(),
            implementer: state.clone(),
            part: state.clone(),
            logical_count: state.clone().map(|_| 0),
            hardware: state.clone(),
            revision: state.clone(),
            model: state.clone(),
        }
    }

    /// The best CPU name: a known ARM core, else the kernel's model name, else the raw
    /// implementer/part pair.
    pub fn cpu_model(&self) -> Field<String> {
        if let (Field::Present(imp), Field::Present(part)) = (&self.implementer, &self.part) {
            if let Some(name) = arm_core_name(imp, part) {
                return Field::Present(name.to_string());
            }
            if !self.model_name.is_present() {
                return Field::Present(format!("{imp}/{part}"));
            }
        }
        match &self.model_name {
            Field::Absent => self.implementer.clone().or_else(|| self.part.clone()),
            other => other.clone(),
        }
    }

    /// `vendor_id` on x86, else the ARM implementer's name (or the raw code).
    pub fn cpu_vendor(&self) -> Field<String> {
        match &self.vendor_id {
            Field::Absent => self
                .implementer
                .clone()
                .map(|imp| arm_implementer_name(&imp).map_or(imp, str::to_string)),
            other => other.clone(),
        }
    }
}

/// Parses `/proc/cpuinfo` in the x86 layout (`model name`, `vendor_id`) and the ARM
/// layout (`CPU implementer`, `CPU part`, board trailer). Lines without a colon or with
/// a key that is not UTF-8 are skipped; a bad value makes only its own field malformed.
pub fn parse_cpuinfo(bytes: &[u8]) -> CpuInfo {
    let mut info = CpuInfo::all(&Field::Absent);
    let mut processors: u32 = 0;
    let mut old_arm_processor = Field::Absent;
    for line in bytes.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let key = key.trim();
        let value = || {
            let parsed = parse_line(&line[colon + 1..]);
            Field::from_parse(match key {
                "CPU implementer" | "CPU part" => parsed.and_then(check_hex),
                _ => parsed,
            })
        };
        let slot = match key {
            "processor" => {
                processors = processors.saturating_add(1);
                continue;
            }
            // Old ARM kernels name the CPU in a `Processor` line.
            "Processor" => &mut old_arm_processor,
            "model name" => &mut info.model_name,
            "vendor_id" => &mut info.vendor_id,
            "CPU implementer" => &mut info.implementer,
            "CPU part" => &mut info.part,
            "Hardware" => &mut info.hardware,
            "Revision" => &mut info.revision,
            "Model" => &mut info.model,
            // `Serial` and everything else are not kept.
            _ => continue,
        };
        // The first processor block speaks for the CPU; later blocks repeat it (or,
        // on big.LITTLE parts, describe the other cluster).
        if *slot == Field::Absent {
            *slot = value();
        }
    }
    if info.model_name == Field::Absent {
        info.model_name = old_arm_processor;
    }
    info.logical_count = if processors == 0 {
        Field::Malformed("no processor entries".to_string())
    } else {
        Field::Present(processors)
    };
    info
}

/// The implementer's name for an ARM `CPU implementer` code.
fn arm_implementer_name(code: &str) -> Option<&'static str> {
    Some(match parse_hex(code)? {
        0x41 => "ARM",
        0x42 => "Broadcom",
        0x43 => "Cavium",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "Applied Micro",
        0x51 => "Qualcomm",
        0x56 => "Marvell",
        0x61 => "Apple",
        0x69 => "Intel",
        0xc0 => "Ampere",
        _ => return None,
    })
}

/// The core name of common ARM Ltd parts.
fn arm_core_name(implementer: &str, part: &str) -> Option<&'static str> {
    if parse_hex(implementer)? != 0x41 {
        return None;
    }
    Some(match parse_hex(part)? {
        0xb76 => "ARM1176",
        0xc05 => "Cortex-A5",
        0xc07 => "Cortex-A7",
        0xc08 => "Cortex-A8",
        0xc09 => "Cortex-A9",
        0xc0d | 0xc0e => "Cortex-A17",
        0xc0f => "Cortex-A15",
        0xd01 => "Cortex-A32",
        0xd03 => "Cortex-A53",
        0xd04 => "Cortex-A35",
        0xd05 => "Cortex-A55",
        0xd07 => "Cortex-A57",
        0xd08 => "Cortex-A72",
        0xd09 => "Cortex-A73",
        0xd0a => "Cortex-A75",
        0xd0b => "Cortex-A76",
        0xd0c => "Neoverse-N1",
        0xd0d => "Cortex-A77",
        0xd41 => "Cortex-A78",
        0xd46 => "Cortex-A510",
        0xd47 => "Cortex-A710",
        0xd4b => "Cortex-A78C",
        _ => return None,
    })
}

/// ARM identification codes are hexadecimal with a `0x` prefix.
fn check_hex(code: String) -> Result<String, String> {
    match parse_hex(&code) {
        Some(_) => Ok(code),
        None => Err(format!(
            "not a hexadecimal code: {:?}",
            truncate_for_reason(&code)
        )),
    }
}

fn parse_hex(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u32::from_str_radix(digits, 16).ok()
}

// ---- /proc/meminfo ------------------------------------------------------------------

/// Totals from `/proc/meminfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    /// `MemTotal` in bytes.
    pub mem_total_bytes: Field<u64>,
    /// `SwapTotal` in bytes.
    pub swap_total_bytes: Field<u64>,
}

/// Parses `MemTotal` and `SwapTotal` (given in kB, meaning KiB) into bytes.
pub fn parse_meminfo(bytes: &[u8]) -> MemInfo {
    let mut info = MemInfo {
        mem_total_bytes: Field::Absent,
        swap_total_bytes: Field::Absent,
    };
    for line in bytes.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let slot = match &line[..colon] {
            b"MemTotal" => &mut info.mem_total_bytes,
            b"SwapTotal" => &mut info.swap_total_bytes,
            _ => continue,
        };
        if *slot == Field::Absent {
            *slot = Field::from_parse(parse_kib(&line[colon + 1..]));
        }
    }
    info
}

fn parse_kib(bytes: &[u8]) -> Result<u64, String> {
    let text = parse_line(bytes)?;
    let number = match text.strip_suffix("kB") {
        Some(n) => n.trim_end(),
        None => return Err(format!("no kB unit: {:?}", truncate_for_reason(&text))),
    };
    let kib: u64 = number
        .parse()
        .map_err(|_| format!("not an unsigned integer: {:?}", truncate_for_reason(number)))?;
    kib.checked_mul(1024)
        .ok_or_else(|| "too large to count in bytes".to_string())
}

// ---- DMI and device tree ------------------------------------------------------------

fn parse_chassis_type(bytes: &[u8]) -> Result<u8, String> {
    let n = parse_u64(bytes)?;
    u8::try_from(n).map_err(|_| format!("chassis type {n} out of range"))
}

/// SMBIOS 3.x chassis type names (DSP0134, table "System Enclosure or Chassis Types").
fn chassis_type_name(n: u8) -> Option<&'static str> {
    const NAMES: [&str; 36] = [
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All in One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "SubChassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system Chassis",
        "Compact PCI",
        "Advanced TCA",
        "Blade",
        "Blade Enclosure",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    NAMES.get(usize::from(n).checked_sub(1)?).copied()
}

/// A device-tree property that holds exactly one string.
fn parse_single_nul_string(bytes: &[u8]) -> Result<String, String> {
    let mut strings = parse_nul_strings(bytes)?;
    match strings.len() {
        1 => Ok(strings.remove(0)),
        n => Err(format!("{n} strings where one was expected")),
    }
}

// ---- storage ------------------------------------------------------------------------

fn read_storage(root: &Root) -> Field<Vec<Disk>> {
    let names = match root.list_dir("/sys/block") {
        Ok(names) => names,
        Err(e) => return Field::from_read_error(e),
    };
    Field::Present(
        names
            .into_iter()
            .filter(|name| !is_virtual_or_area(name))
            .filter(|name| !root.exists(&format!("/sys/block/{name}/partition")))
            .map(|name| read_disk(root, name))
            .collect(),
    )
}

fn read_disk(root: &Root, name: String) -> Disk {
    let attr = |rel: &str| format!("/sys/block/{name}/{rel}");
    Disk {
        size_bytes: Field::from_file(root, &attr("size"), ATTRIBUTE_LIMIT, parse_sectors),
        removable: Field::from_file(root, &attr("removable"), ATTRIBUTE_LIMIT, parse_flag),
        rotational: Field::from_file(root, &attr("queue/rotational"), ATTRIBUTE_LIMIT, parse_flag),
        model: Field::from_file(root, &attr("device/model"), ATTRIBUTE_LIMIT, parse_line)
            .or_else(|| Field::from_file(root, &attr("device/name"), ATTRIBUTE_LIMIT, parse_line)),
        vendor: Field::from_file(root, &attr("device/vendor"), ATTRIBUTE_LIMIT, parse_line),
        name,
    }
}

/// Block devices that are not disks of their own: loop, RAM, zram and device-mapper
/// devices, and the boot and RPMB areas of an eMMC (`mmcblk2boot0`).
fn is_virtual_or_area(name: &str) -> bool {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered("loop") || numbered("ram") || numbered("zram") || numbered("dm-") {
        return true;
    }
    let Some(rest) = name.strip_prefix("mmcblk") else {
        return false;
    };
    let area = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    area.len() < rest.len()
        && (area == "rpmb"
            || area
                .strip_prefix("boot")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

/// `size` counts 512-byte sectors whatever the logical block size.
fn parse_sectors(bytes: &[u8]) -> Result<u64, String> {
    parse_u64(bytes)?
        .checked_mul(512)
        .ok_or_else(|| "too large to count in bytes".to_string())
}

fn parse_flag(bytes: &[u8]) -> Result<bool, String> {
    match parse_line(bytes)?.as_str() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(format!("not 0 or 1: {:?}", truncate_for_reason(other))),
    }
}

// ---- displays -----------------------------------------------------------------------

fn read_displays(root: &Root) -> Field<Vec<Display>> {
    let names = match root.list_dir("/sys/class/drm") {
        Ok(names) => names,
        Err(e) => return Field::from_read_error(e),
    };
    Field::Present(
        names
            .into_iter()
            .filter_map(|name| {
                let (card, connector) = split_connector(&name)?;
                Some(read_display(root, &name, card, connector))
            })
            .collect(),
    )
}

/// Splits `card1-HDMI-A-1` into `card1` and `HDMI-A-1`; other DRM entries (`card1`,
/// `renderD128`, `version`) are not connectors.
fn split_connector(name: &str) -> Option<(&str, &str)> {
    let (card, connector) = name.split_once('-')?;
    let number = card.strip_prefix("card")?;
    let numbered = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    (numbered && !connector.is_empty()).then_some((card, connector))
}

fn read_display(root: &Root, name: &str, card: &str, connector: &str) -> Display {
    let status = Field::from_file(
        root,
        &format!("/sys/class/drm/{name}/status"),
        ATTRIBUTE_LIMIT,
        parse_status,
    );
    let mode = match root.read(&format!("/sys/class/drm/{name}/modes"), ATTRIBUTE_LIMIT) {
        Ok(bytes) => match parse_preferred_mode(&bytes) {
            Ok(Some(mode)) => Field::Present(mode),
            Ok(None) => Field::Absent,
            Err(reason) => Field::Malformed(reason),
        },
        Err(e) => Field::from_read_error(e),
    };
    let (width, height) = split_pair(mode);
    Display {
        card: card.to_string(),
        connector: connector.to_string(),
        status,
        width,
        height,
    }
}

fn parse_status(bytes: &[u8]) -> Result<String, String> {
    let status = parse_line(bytes)?;
    match status.as_str() {
        "connected" | "disconnected" | "unknown" => Ok(status),
        other => Err(format!("unknown status {:?}", truncate_for_reason(other))),
    }
}

/// The first line of a DRM `modes` file (`1920x1080`, or `1920x1080i` when interlaced)
/// as width and height; `None` when no mode is listed (nothing connected).
pub fn parse_preferred_mode(bytes: &[u8]) -> Result<Option<(u32, u32)>, String> {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = parse_line(first)?;
    if line.is_empty() {
        return Ok(None);
    }
    let body = line.strip_suffix('i').unwrap_or(&line);
    parse_dimensions(body, 'x').map(Some)
}

/// `virtual_size` of a framebuffer: `1920,1080`.
pub fn parse_virtual_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    parse_dimensions(&parse_line(bytes)?, ',')
}

fn parse_dimensions(text: &str, separator: char) -> Result<(u32, u32), String> {
    let bad = || format!("not a resolution: {:?}", truncate_for_reason(text));
    let (w, h) = text.split_once(separator).ok_or_else(bad)?;
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u32>().map_err(|_| bad())
    };
    Ok((number(w)?, number(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Root {
        let path = format!(
            "{}/../tests/fixtures/roots/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(
            std::path::Path::new(&path).is_dir(),
            "fixture root {path} is missing"
        );
        Root::at(path)
    }

    fn present<T: Clone + std::fmt::Debug>(field: &Field<T>) -> T {
        match field {
            Field::Present(v) => v.clone(),
            other => panic!("expected a present value, got {other:?}"),
        }
    }

    fn is_malformed<T>(field: &Field<T>) -> bool {
        matches!(field, Field::Malformed(_))
    }

    const X86_CPUINFO: &[u8] = b"processor\t: 0\n\
vendor_id\t: GenuineIntel\n\
cpu family\t: 6\n\
model\t\t: 92\n\
model name\t: Intel(R) Atom(TM) Processor E3950 @ 1.60GHz\n\
flags\t\t: fpu vme de pse tsc msr\n\
\n\
processor\t: 1\n\
vendor_id\t: GenuineIntel\n\
model name\t: Intel(R) Atom(TM) Processor E3950 @ 1.60GHz\n\
\n";

    const PI_CPUINFO: &[u8] = b"processor\t: 0\n\
BogoMIPS\t: 108.00\n\
Features\t: fp asimd evtstrm crc32 cpuid\n\
CPU implementer\t: 0x41\n\
CPU architecture: 8\n\
CPU variant\t: 0x0\n\
CPU part\t: 0xd08\n\
CPU revision\t: 3\n\
\n\
processor\t: 1\n\
CPU implementer\t: 0x41\n\
CPU part\t: 0xd08\n\
\n\
Hardware\t: BCM2835\n\
Revision\t: d03114\n\
Serial\t\t: 100000003a9b6c2d\n\
Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n";

    const ARMV7_CPUINFO: &[u8] = b"processor\t: 0\n\
model name\t: ARMv7 Processor rev 5 (v7l)\n\
BogoMIPS\t: 48.00\n\
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm\n\
CPU implementer\t: 0x41\n\
CPU architecture: 7\n\
CPU variant\t: 0x0\n\
CPU part\t: 0xc07\n\
CPU revision\t: 5\n\
\n\
Hardware\t: Freescale i.MX6 Ultralite (Device Tree)\n\
Revision\t: 0000\n\
Serial\t\t: 0000000000000000\n";

    #[test]
    fn cpuinfo_layouts() {
        struct Case {
            name: &'static str,
            input: &'static [u8],
            model: Field<String>,
            vendor: Field<String>,
            count: Field<u32>,
            board_model: Field<String>,
        }
        let p = |s: &str| Field::Present(s.to_string());
        let cases = [
            Case {
                name: "x86",
                input: X86_CPUINFO,
                model: p("Intel(R) Atom(TM) Processor E3950 @ 1.60GHz"),
                vendor: p("GenuineIntel"),
                count: Field::Present(2),
                board_model: Field::Absent,
            },
            Case {
                name: "aarch64 raspberry pi",
                input: PI_CPUINFO,
                model: p("Cortex-A72"),
                vendor: p("ARM"),
                count: Field::Present(2),
                board_model: p("Raspberry Pi 4 Model B Rev 1.4"),
            },
            Case {
                name: "armv7",
                input: ARMV7_CPUINFO,
                model: p("Cortex-A7"),
                vendor: p("ARM"),
                count: Field::Present(1),
                board_model: Field::Absent,
            },
            Case {
                name: "unknown arm part",
                input: b"processor : 0\nCPU implementer : 0x51\nCPU part : 0x805\n",
                model: p("0x51/0x805"),
                vendor: p("Qualcomm"),
                count: Field::Present(1),
                board_model: Field::Absent,
            },
            Case {
                name: "old arm kernel names the cpu in Processor",
                input: b"Processor\t: ARMv6-compatible processor rev 7 (v6l)\nprocessor\t: 0\n",
                model: p("ARMv6-compatible processor rev 7 (v6l)"),
                vendor: Field::Absent,
                count: Field::Present(1),
                board_model: Field::Absent,
            },
        ];
        for case in cases {
            let info = parse_cpuinfo(case.input);
            assert_eq!(info.cpu_model(), case.model, "{}", case.name);
            assert_eq!(info.cpu_vendor(), case.vendor, "{}", case.name);
            assert_eq!(info.logical_count, case.count, "{}", case.name);
            assert_eq!(info.model, case.board_model, "{}", case.name);
        }
    }

    #[test]
    fn cpuinfo_keeps_the_pi_trailer_but_not_the_serial() {
        let info = parse_cpuinfo(PI_CPUINFO);
        assert_eq!(info.hardware, Field::Present("BCM2835".into()));
        assert_eq!(info.revision, Field::Present("d03114".into()));
        let json = serde_json::to_string(&info).unwrap();
        assert!(!json.contains("3a9b6c2d"), "{json}");
    }

    #[test]
    fn hostile_cpuinfo_marks_only_the_bad_fields() {
        let mut input = b"no colon here\nprocessor : 0\n\0\0\0\nmodel name : \xff\xfe\n".to_vec();
        input.extend_from_slice(b"vendor_id : Genuine\0Intel\n\xff\xff : 1\nHardware : ok\n");
        let info = parse_cpuinfo(&input);
        assert!(is_malformed(&info.model_name));
        assert!(is_malformed(&info.vendor_id));
        assert!(is_malformed(&info.cpu_model()));
        assert_eq!(info.logical_count, Field::Present(1));
        assert_eq!(info.hardware, Field::Present("ok".into()));

        let empty = parse_cpuinfo(b"");
        assert!(is_malformed(&empty.logical_count));
        assert_eq!(empty.cpu_model(), Field::Absent);
        let binary = parse_cpuinfo(&[0xff; 300]);
        assert!(is_malformed(&binary.logical_count));
    }

    #[test]
    fn meminfo_totals_in_bytes() {
        let info = parse_meminfo(
            b"MemTotal:        3884136 kB\nMemFree:          123 kB\nSwapTotal:        102396 kB\n",
        );
        assert_eq!(info.mem_total_bytes, Field::Present(3_884_136 * 1024));
        assert_eq!(info.swap_total_bytes, Field::Present(102_396 * 1024));

        let info = parse_meminfo(b"MemFree: 1 kB\n");
        assert_eq!(info.mem_total_bytes, Field::Absent);

        for bad in [
            &b"MemTotal: 99999999999999999999 kB\n"[..],
            b"MemTotal: 18014398509481984 kB\n",
            b"MemTotal: -5 kB\n",
            b"MemTotal: 12\n",
            b"MemTotal: \xff kB\n",
        ] {
            let info = parse_meminfo(bad);
            assert!(
                is_malformed(&info.mem_total_bytes),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn modes_and_virtual_size() {
        assert_eq!(
            parse_preferred_mode(b"1920x1080\n1280x720\n"),
            Ok(Some((1920, 1080)))
        );
        assert_eq!(
            parse_preferred_mode(b"1920x1080i\n"),
            Ok(Some((1920, 1080)))
        );
        assert_eq!(parse_preferred_mode(b""), Ok(None));
        assert!(parse_preferred_mode(b"\xff\x00\x13junk").is_err());
        assert!(parse_preferred_mode(b"99999999999x1080\n").is_err());
        assert!(parse_preferred_mode(b"x1080\n").is_err());
        assert!(parse_preferred_mode(b"+1920x1080\n").is_err());
        assert_eq!(parse_virtual_size(b"1920,1080\n"), Ok((1920, 1080)));
        assert!(parse_virtual_size(b"1920;1080\n").is_err());
    }

    #[test]
    fn block_device_filter() {
        for name in [
            "loop0",
            "ram15",
            "zram0",
            "dm-3",
            "mmcblk2boot0",
            "mmcblk0rpmb",
        ] {
            assert!(is_virtual_or_area(name), "{name}");
        }
        for name in [
            "sda",
            "mmcblk0",
            "nvme0n1",
            "loopy",
            "dm-x",
            "mmcblkboot0",
            "md0",
        ] {
            assert!(!is_virtual_or_area(name), "{name}");
        }
    }

    #[test]
    fn chassis_types() {
        assert_eq!(parse_chassis_type(b"3\n"), Ok(3));
        assert!(parse_chassis_type(b"300\n").is_err());
        assert_eq!(chassis_type_name(3), Some("Desktop"));
        assert_eq!(chassis_type_name(36), Some("Stick PC"));
        assert_eq!(chassis_type_name(0), None);
        assert_eq!(chassis_type_name(37), None);
    }

    #[test]
    fn rpi4_fixture() {
        let hw = read(&fixture("rpi4-raspios64"));
        assert_eq!(present(&hw.model), "Raspberry Pi 4 Model B Rev 1.4");
        assert_eq!(present(&hw.vendor), "raspberrypi");
        assert_eq!(
            present(&hw.devicetree_model),
            "Raspberry Pi 4 Model B Rev 1.4"
        );
        assert_eq!(
            present(&hw.devicetree_compatible),
            vec![
                "raspberrypi,4-model-b".to_string(),
                "brcm,bcm2711".to_string()
            ]
        );
        assert_eq!(hw.sys_vendor, Field::Absent);
        assert_eq!(hw.soc_id, Field::Absent);
        assert_eq!(present(&hw.cpu_model), "Cortex-A72");
        assert_eq!(present(&hw.cpu_vendor), "ARM");
        assert_eq!(present(&hw.cpu_logical_count), 4);
        assert_eq!(present(&hw.cpuinfo_revision), "d03114");
        assert_eq!(present(&hw.cpuinfo_model), "Raspberry Pi 4 Model B Rev 1.4");
        assert_eq!(hw.cpu_architecture, Field::Absent);
        assert_eq!(present(&hw.memory_total_bytes), 3_884_136 * 1024);
        let storage = present(&hw.storage);
        assert_eq!(storage.len(), 1, "{storage:?}");
        assert_eq!(storage[0].name, "mmcblk0");
        assert_eq!(storage[0].size_bytes, Field::Present(62_333_952 * 512));
        assert_eq!(storage[0].rotational, Field::Present(false));
        assert_eq!(storage[0].model, Field::Present("SC32G".into()));
        let displays = present(&hw.displays);
        let hdmi = displays
            .iter()
            .find(|d| d.connector == "HDMI-A-1")
            .expect("HDMI-A-1 connector");
        assert_eq!(hdmi.card, "card1");
        assert_eq!(hdmi.status, Field::Present("connected".into()));
        assert_eq!(
            (hdmi.width.clone(), hdmi.height.clone()),
            (Field::Present(1920), Field::Present(1080))
        );
        let other = displays
            .iter()
            .find(|d| d.connector == "HDMI-A-2")
            .expect("HDMI-A-2 connector");
        assert_eq!(other.status, Field::Present("disconnected".into()));
        assert_eq!(other.width, Field::Absent);
        assert_eq!(hw.framebuffer_width, Field::Present(1920));
        assert_eq!(hw.framebuffer_height, Field::Present(1080));
    }

    #[test]
    fn rpi4_output_never_holds_the_serial() {
        let root = fixture("rpi4-raspios64");
        // The serial is in the fixture, so its absence below is the reader's doing.
        let cpuinfo = root.read("/proc/cpuinfo", TEXT_LIMIT).unwrap();
        assert!(String::from_utf8_lossy(&cpuinfo).contains("100000003a9b6c2d"));
        let json = serde_json::to_string(&read(&root)).unwrap();
        assert!(!json.contains("100000003a9b6c2d"), "{json}");
        assert!(!json.to_lowercase().contains("serial"), "{json}");
    }

    #[test]
    fn x86_gateway_fixture() {
        let hw = read(&fixture("x86-gateway"));
        assert_eq!(present(&hw.sys_vendor), "Advantech");
        assert_eq!(present(&hw.product_name), "UNO-2484G");
        assert_eq!(present(&hw.vendor), "Advantech");
        assert_eq!(present(&hw.model), "UNO-2484G");
        assert_eq!(present(&hw.board_name), "UNO-2484G");
        assert_eq!(present(&hw.bios_vendor), "American Megatrends Inc.");
        assert_eq!(present(&hw.chassis_type), 3);
        assert_eq!(present(&hw.chassis_type_name), "Desktop");
        assert_eq!(hw.devicetree_model, Field::Absent);
        assert_eq!(
            present(&hw.cpu_model),
            "Intel(R) Atom(TM) Processor E3950 @ 1.60GHz"
        );
        assert_eq!(present(&hw.cpu_vendor), "GenuineIntel");
        assert_eq!(hw.cpu_implementer, Field::Absent);
        assert_eq!(present(&hw.cpu_logical_count), 4);
        assert_eq!(present(&hw.memory_total_bytes), 7_989_340 * 1024);
        assert_eq!(present(&hw.swap_total_bytes), 999_420 * 1024);
        let storage = present(&hw.storage);
        assert_eq!(storage.len(), 1, "{storage:?}");
        assert_eq!(storage[0].name, "sda");
        assert_eq!(storage[0].size_bytes, Field::Present(125_045_424 * 512));
        assert_eq!(storage[0].removable, Field::Present(false));
        assert_eq!(storage[0].vendor, Field::Present("ATA".into()));
        let displays = present(&hw.displays);
        assert!(!displays.is_empty());
        for d in &displays {
            assert_eq!(d.status, Field::Present("disconnected".into()), "{d:?}");
            assert_eq!(d.width, Field::Absent, "{d:?}");
        }
        assert_eq!(hw.framebuffer_width, Field::Absent);
        let json = serde_json::to_string(&hw).unwrap().to_lowercase();
        assert!(!json.contains("serial") && !json.contains("uuid"), "{json}");
    }

    #[test]
    fn yocto_fixture() {
        let hw = read(&fixture("yocto-opkg"));
        assert_eq!(present(&hw.model), "NXP i.MX8MM EVK board");
        assert_eq!(present(&hw.vendor), "fsl");
        assert_eq!(present(&hw.soc_id), "i.MX8MM");
        assert_eq!(present(&hw.soc_family), "Freescale i.MX");
        assert_eq!(present(&hw.soc_revision), "1.0");
        assert_eq!(present(&hw.cpu_model), "Cortex-A53");
        assert_eq!(present(&hw.cpu_logical_count), 4);
        assert_eq!(hw.cpuinfo_model, Field::Absent);
        assert_eq!(hw.swap_total_bytes, Field::Present(0));
        let storage = present(&hw.storage);
        let names: Vec<&str> = storage.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mmcblk2"]);
        assert_eq!(storage[0].model, Field::Present("DG4032".into()));
        assert_eq!(hw.displays, Field::Absent);
        let json = serde_json::to_string(&hw).unwrap();
        let soc_serial = root_text(&fixture("yocto-opkg"), "/sys/devices/soc0/serial_number");
        assert!(!json.contains(&soc_serial), "{json}");
    }

    fn root_text(root: &Root, path: &str) -> String {
        let bytes = root.read(path, ATTRIBUTE_LIMIT).unwrap();
        String::from_utf8(bytes).unwrap().trim().to_string()
    }

    #[test]
    fn container_fixture() {
        let hw = read(&fixture("container"));
        assert_eq!(hw.model, Field::Absent);
        assert_eq!(hw.vendor, Field::Absent);
        assert_eq!(hw.cpu_model, Field::Absent);
        assert_eq!(hw.storage, Field::Absent);
        assert_eq!(hw.displays, Field::Absent);
        assert_eq!(present(&hw.memory_total_bytes), 16_318_480 * 1024);
    }

    #[test]
    fn garbage_fixture_is_malformed_not_a_panic() {
        let hw = read(&fixture("garbage"));
        // product_name is made unreadable by the harness at run time.
        assert!(!hw.product_name.is_present());
        assert!(is_malformed(&hw.sys_vendor), "{:?}", hw.sys_vendor);
        assert!(is_malformed(&hw.product_version));
        assert!(is_malformed(&hw.board_name));
        assert!(is_malformed(&hw.bios_version));
        assert!(is_malformed(&hw.board_vendor));
        assert_eq!(hw.product_family, Field::Absent, "dangling link");
        assert!(is_malformed(&hw.chassis_type));
        assert!(is_malformed(&hw.chassis_type_name));
        assert!(is_malformed(&hw.vendor));
        assert!(is_malformed(&hw.devicetree_model));
        assert!(is_malformed(&hw.devicetree_compatible));
        assert!(is_malformed(&hw.soc_machine));
        assert!(is_malformed(&hw.cpu_model));
        assert!(is_malformed(&hw.cpu_vendor));
        assert!(is_malformed(&hw.cpu_implementer));
        assert!(is_malformed(&hw.cpu_part));
        assert_eq!(hw.cpu_logical_count, Field::Present(2));
        assert!(!hw.memory_total_bytes.is_present());
        assert!(is_malformed(&hw.framebuffer_width));

        let storage = present(&hw.storage);
        let disk = |name: &str| {
            storage
                .iter()
                .find(|d| d.name == name)
                .unwrap_or_else(|| panic!("no {name} in {storage:?}"))
                .clone()
        };
        let loopy = disk("loopy");
        assert_eq!(
            loopy.size_bytes,
            Field::Malformed("symbolic link loop".into())
        );
        assert_eq!(disk("sdz").size_bytes, Field::Absent, "dangling link");
        let sdx = disk("sdx");
        assert!(is_malformed(&sdx.size_bytes), "overflow: {sdx:?}");
        assert!(is_malformed(&sdx.removable));
        assert!(is_malformed(&sdx.rotational));
        assert!(is_malformed(&sdx.model));
        assert!(is_malformed(&disk("sdy").size_bytes));

        let displays = present(&hw.displays);
        assert!(displays.len() >= 2, "{displays:?}");
        for d in &displays {
            assert!(is_malformed(&d.width), "{d:?}");
        }
        assert!(displays.iter().any(|d| is_malformed(&d.status)));
    }

    #[test]
    fn a_huge_meminfo_and_a_fifo_cpuinfo_do_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let f = std::fs::File::create(dir.path().join("proc/meminfo")).unwrap();
        f.set_len(1 << 30).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("proc/cpuinfo"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let hw = read(&Root::at(dir.path()));
        assert!(is_malformed(&hw.memory_total_bytes));
        assert!(is_malformed(&hw.cpu_logical_count));
        assert!(is_malformed(&hw.cpu_model));
        assert_eq!(hw.storage, Field::Absent);
    }

    #[test]
    fn live_root_reports_an_architecture() {
        let hw = read(&Root::live());
        let arch = present(&hw.cpu_architecture);
        assert!(!arch.is_empty());
        // `uname -m` names differ from Rust's on 32-bit ARM (`armv7l` against `arm`).
        assert!(arch.starts_with(std::env::consts::ARCH), "{arch}");
    }
}
