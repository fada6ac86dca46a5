"""The emulator's web dashboard (``GET /__admin/dashboard``): a page, its script and its style,
served by the package with no build step; it reads and changes the emulator only through the
control plane, the public API and the tenant's event feed."""
