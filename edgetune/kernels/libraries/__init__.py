"""One package per library of kernels. Each package's `__init__` exposes `LIBRARY` (a
`kernels.library.Library`) and imports no third-party library; the modules it lists define the
primitives (`PRIMITIVES`) and converters (`CONVERTERS`). The registry discovers the packages: adding a
library is adding a package here (see docs/architecture.md, "Adding a library")."""
