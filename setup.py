from setuptools import find_packages, setup

setup(
    name='mmfishnet',
    version='0.1.0',
    description='FishNet backbone for the OpenMMLab 2.x stack (MMDetection, MMPretrain, MMSegmentation)',
    packages=find_packages(include=['mmfishnet', 'mmfishnet.*']),
    python_requires='>=3.8',
    install_requires=['mmengine==0.10.7', 'mmcv==2.1.0', 'mmdet==3.3.0', 'mmpretrain==1.2.0',
                      'mmsegmentation==1.2.2', 'ftfy', 'regex', 'pycocotools'],
    zip_safe=False,
)
