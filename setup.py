"""Package discovery: the repository's top-level folders are the subpackages of one import package,
``cssnn`` (``hw/`` is ``cssnn.hw``, ``sw/spec/`` is ``cssnn.sw.spec``, ...). Every folder with an
``__init__.py`` under them is found here, so a new subpackage cannot be left out of a wheel
(tests/test_packaging.py checks a built wheel against the source tree). Everything else is in
pyproject.toml."""

from setuptools import find_packages, setup

#: top-level folder -> import package
FOLDERS = {"cssnn": "cssnn", "hw": "cssnn.hw", "sw": "cssnn.sw", "sim": "cssnn.sim", "boards": "cssnn.boards",
           "verif": "cssnn.verif", "bench": "cssnn.bench"}

packages = []
for folder, package in FOLDERS.items():
    # cssnn/ holds links to the other folders (so that tools which walk the package's directory, such
    # as import-linter, see the whole package); its subpackages are the other folders themselves.
    subs = [] if folder == "cssnn" else find_packages(folder)
    packages += [package] + [f"{package}.{sub}" for sub in subs]

setup(packages=packages, package_dir=dict((package, folder) for folder, package in FOLDERS.items()))
