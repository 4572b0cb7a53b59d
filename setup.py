"""The package list, found rather than written by hand (everything else is in pyproject.toml).

Every RenderFMLib subpackage in the tree, and Resources/ (presets, the sample CT, tables), which
sits at the top of the repository as a Slicer extension expects and ships inside the wheel as
RenderFMLib.Resources, where RenderFMLib.resources looks for it.
"""

from setuptools import find_namespace_packages, find_packages, setup

resources = ["RenderFMLib.Resources", *(f"RenderFMLib.Resources.{name}"
                                        for name in find_namespace_packages(where="Resources"))]
setup(packages=[*find_packages(include=["RenderFMLib", "RenderFMLib.*"]), *resources],
      package_dir={"RenderFMLib.Resources": "Resources"})
