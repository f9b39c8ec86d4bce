# Built by `npm install` (package.json "install": node-gyp rebuild -C native). No download:
# npm's nodedir points node-gyp at the local Node headers.
{
  "targets": [
    {
      "target_name": "uvs_native",
      "sources": ["src/uvs_native.cc", "src/xdp.cc", "src/tc-decap.cc", "src/fast-path.cc", "src/conn-lookup.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
    }
  ]
}
