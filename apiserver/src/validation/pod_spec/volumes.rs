//! Volume validation: unique DNS-1123 names and exactly one source, with
//! the basic checks of the common sources.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::validation::names::is_dns1123_label;
use crate::validation::{FieldError, FieldErrors, child, index};

use super::fields::{arr, int, str_at};

/// Every volume source, in the order upstream checks them.
pub const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flexVolume",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "projected",
    "csi",
    "ephemeral",
    "image",
];

/// `fileModeErrorMsg`.
const FILE_MODE: &str = "must be a number between 0 and 0777 (octal), both inclusive";

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

fn check_mode(src: Option<&Value>, field: &str, path: &str, errs: &mut FieldErrors) {
    if let Some(mode) = int(src, field)
        && !(0..=0o777).contains(&mode)
    {
        errs.push(FieldError::invalid(child(path, field), mode, FILE_MODE));
    }
}

/// Validates `spec.volumes` and returns the volume names.
pub fn validate_volumes(spec: Option<&Value>, path: &str, errs: &mut FieldErrors) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, vol) in arr(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let v = Some(vol);
        let name = str_at(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            let msgs = is_dns1123_label(name);
            if msgs.is_empty() && !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
            for m in msgs {
                errs.push(FieldError::invalid(child(&p, "name"), name, m));
            }
        }
        let mut count = 0;
        for source in VOLUME_SOURCES {
            let Some(src) = vol.get(*source).filter(|s| !s.is_null()) else {
                continue;
            };
            count += 1;
            let sp = child(&p, source);
            if count > 1 {
                errs.push(FieldError::forbidden(sp, "may not specify more than 1 volume type"));
                continue;
            }
            let src = Some(src);
            match *source {
                "hostPath" => {
                    if str_at(src, "path").is_empty() {
                        errs.push(FieldError::required(child(&sp, "path"), ""));
                    }
                    let t = str_at(src, "type");
                    if !HOST_PATH_TYPES.contains(&t) {
                        errs.push(FieldError::not_supported(child(&sp, "type"), t, &HOST_PATH_TYPES[1..]));
                    }
                }
                "secret" => {
                    if str_at(src, "secretName").is_empty() {
                        errs.push(FieldError::required(child(&sp, "secretName"), ""));
                    }
                    check_mode(src, "defaultMode", &sp, errs);
                }
                "configMap" => {
                    if str_at(src, "name").is_empty() {
                        errs.push(FieldError::required(child(&sp, "name"), ""));
                    }
                    check_mode(src, "defaultMode", &sp, errs);
                }
                "downwardAPI" | "projected" => check_mode(src, "defaultMode", &sp, errs),
                "persistentVolumeClaim" if str_at(src, "claimName").is_empty() => {
                    errs.push(FieldError::required(child(&sp, "claimName"), ""));
                }
                "nfs" => {
                    for f in ["server", "path"] {
                        if str_at(src, f).is_empty() {
                            errs.push(FieldError::required(child(&sp, f), ""));
                        }
                    }
                }
                "csi" if str_at(src, "driver").is_empty() => {
                    errs.push(FieldError::required(child(&sp, "driver"), ""));
                }
                _ => {}
            }
        }
        if count == 0 {
            errs.push(FieldError::required(&p, "must specify a volume type"));
        }
    }
    names
}
