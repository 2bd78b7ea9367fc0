# lme4 on the model the fit property test found (a random slope on a level-2 variable,
# block tau): singular, deviance 46494.0622943, tau00 2.084516, var(female) 0.025541.
# From its default start lme4 stops there; restarted at mlmwrap's optimum (the Newton
# engine of issue 10) it stays at a lower singular optimum, deviance 46494.061229
# (lme4's own deviance function), tau00 2.083728, var(meanses) 6.7521e-4,
# var(female) 0.0272636, their correlation -1.
# The numbers are pinned in tests/test_engine.py::test_boundary_reached_when_the_interior_is_flat.
suppressPackageStartupMessages(library(lme4))
d <- read.csv("../../mlmwrap/datasets/hsb.csv")
m <- lmer(mathach ~ meanses + ses + female + sector + (1|school) + (0 + meanses + female | school), data=d, REML=FALSE)
print(deviance(m), digits=12); print(VarCorr(m), comp="Variance"); print(getME(m, "theta"))
m2 <- update(m, start=list(theta=c(0.237994739, 0.00428415692, -0.0272231517, 0)))
print(deviance(m2), digits=12); print(VarCorr(m2), comp="Variance"); print(getME(m2, "theta"))
