//! Bakes the path of the libpython this crate links against into the NIF, so
//! that the interpreter re-opened at run time is exactly the one pyo3 was
//! built for: two different Pythons can never be mixed in one VM. Its
//! directory becomes the NIF's RUNPATH, so that a Python outside the
//! system's library path loads without `LD_LIBRARY_PATH`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import sysconfig, os; print(os.path.join(sysconfig.get_config_var('LIBDIR'), sysconfig.get_config_var('LDLIBRARY'))); print(sysconfig.get_config_var('INSTSONAME') or '')";
    let out = Command::new(&python)
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run PYO3_PYTHON={python}: {e}"));
    if !out.status.success() {
        panic!(
            "PYO3_PYTHON={python} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let libpath = lines.next().unwrap_or_default().trim().to_string();
    let soname = lines.next().unwrap_or_default().trim().to_string();
    // Prefer the versioned soname next to the dev symlink: it is what the
    // dynamic linker recorded as our dependency.
    let dir = std::path::Path::new(&libpath)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let versioned = dir.join(&soname);
    let chosen = if !soname.is_empty() && versioned.exists() {
        versioned.to_string_lossy().into_owned()
    } else {
        libpath
    };
    println!("cargo:rustc-env=PY_NIF_LIBPYTHON={chosen}");
    // The dynamic linker must find that same libpython when the BEAM loads
    // the NIF, wherever the Python lives (pyenv, uv, conda, /opt/...):
    // record its directory as the library's RUNPATH. No LD_LIBRARY_PATH
    // needed; one that is set still comes first, as usual.
    if !dir.as_os_str().is_empty() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    println!("cargo:rustc-env=PY_NIF_PYTHON={python}");
    // The enif_* symbols come from the BEAM that loads the NIF. A shared
    // library may leave them undefined; the `cargo test` executables must
    // be told to, and their tests never call into the BEAM.
    println!("cargo:rustc-link-arg=-Wl,--unresolved-symbols=ignore-all");
    println!("cargo:rustc-link-arg=-Wl,-z,lazy");
}
