# lme4 on the model the fit property test found (a random slope on a level-2 variable,
# block tau): singular, deviance 46494.0622943, tau00 2.084516, var(female) 0.025541.
# The numbers are pinned in tests/test_engine.py::test_boundary_reached_when_the_interior_is_flat.
suppressPackageStartupMessages(library(lme4))
d <- read.csv("../../mlmwrap/datasets/hsb.csv")
m <- lmer(mathach ~ meanses + ses + female + sector + (1|school) + (0 + meanses + female | school), data=d, REML=FALSE)
print(deviance(m), digits=12); print(VarCorr(m), comp="Variance"); print(getME(m, "theta"))
