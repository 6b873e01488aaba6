//! Build script of the testkit and bench crates: their binaries and tests
//! load the speech models through hotline, so they need the same run-time
//! library path as the `hotline` binary (see the root build.rs): `$ORIGIN`
//! when shipped beside the .so files, and the build tree's library folder.
fn main() {
    println!("cargo:rerun-if-env-changed=SHERPA_ONNX_LIB_DIR");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Some(dir) = std::env::var_os("SHERPA_ONNX_LIB_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
