//! Docker config JSON (pull secrets, `~/.docker/config.json`, podman's auth.json shape) and
//! the registry-key matching that picks a credential from it. The first byte picks the
//! registry host asked about; credential helpers are never run for these bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_image::auth::{lookup_with_env, ConfigEnv};
use wasm_image::ClientOptions;

const HOSTS: &[&str] = &[
    "docker.io",
    "registry-1.docker.io",
    "127.0.0.1:5000",
    "ghcr.io",
    "[::1]:5000",
    "localhost",
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, config)) = data.split_first() else {
        return;
    };
    let options = ClientOptions {
        docker_config_json: Some(config.to_vec()),
        use_config_files: false,
        ..ClientOptions::default()
    };
    let host = HOSTS[first as usize % HOSTS.len()];
    let lookup = lookup_with_env(&options, host, &ConfigEnv::default());
    wasm_image_fuzz::check(&lookup);
});
