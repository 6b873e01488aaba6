//! Makes the binaries find the sherpa-onnx / ONNX Runtime shared libraries
//! without LD_LIBRARY_PATH.
//!
//! The sherpa-onnx-sys build script sets an rpath, but Cargo applies a
//! dependency's link arguments only to that dependency, so the final
//! executables need their own: `$ORIGIN` for a deployed binary shipped with
//! the .so files beside it, and the absolute library folder for binaries run
//! from the build tree (tests live in target/*/deps).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=SHERPA_ONNX_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    if let Some(dir) = std::env::var_os("SHERPA_ONNX_LIB_DIR") {
        let dir = PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        // ort loads libonnxruntime.so at run time; tell the code where the
        // build found it, as the last place to look.
        println!("cargo:rustc-env=HOTLINE_NATIVE_LIB_DIR={}", dir.display());
    } else {
        println!("cargo:rustc-env=HOTLINE_NATIVE_LIB_DIR=");
    }
}
