# Copyright (c) mmfishnet contributors. All rights reserved.
from typing import Optional, Union

from mmengine.config import ConfigDict

ConfigType = Union[ConfigDict, dict]
OptConfigType = Optional[ConfigType]

__all__ = ['ConfigType', 'OptConfigType']
