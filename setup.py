import importlib.util
import os.path as osp

from setuptools import find_packages, setup


def requirements_reader():
    """mmfishnet/utils/requirements.py, loaded by its path (importing the package would need torch): the
    pins of requirements/*.txt."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'mmfishnet', 'utils', 'requirements.py')
    spec = importlib.util.spec_from_file_location('mmfishnet_requirements', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reqs = requirements_reader()

if __name__ == '__main__':
    setup(
        name='mmfishnet',
        version='0.1.0',
        description='FishNet backbone for the OpenMMLab 2.x stack (MMDetection, MMPretrain, MMSegmentation)',
        license='Apache License 2.0',  # the LICENSE file, as the OpenMMLab packages
        classifiers=['License :: OSI Approved :: Apache Software License'],
        packages=find_packages(include=['mmfishnet', 'mmfishnet.*']),
        python_requires=reqs.python_requires(),
        install_requires=reqs.read_requirements('runtime'),
        extras_require={name: reqs.read_requirements(name) for name in ('optional', 'tests')},
        zip_safe=False,
    )
