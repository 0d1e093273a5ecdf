# GPAW build configuration (read by GPAW's setup.py via GPAW_CONFIG=.ci/gpaw-siteconfig.py).
# Debian's libxc-dev, libopenblas-dev and libfftw3-dev provide the libraries; no MPI or
# ScaLAPACK: the DFT tier runs one serial GPAW process per structure.
compiler = "g++"
fftw = True
libraries = ["xc", "openblas", "fftw3"]
