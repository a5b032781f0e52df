// XformTransforms: placeholder until the module lands.
