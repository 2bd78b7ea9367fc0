# Golden numbers for block-diagonal tau structures (issue 9): lme4 profile intervals of
# models written with `||` and `(0 + x | g)`. Run from this folder:
#   Rscript issue9_tau_structures.R   (writes issue9_tau_structures.json, about 30 s)
# HSB from ../../mlmwrap/datasets/hsb.csv; cwc_ses = ses minus its school mean.
suppressMessages({library(lme4); library(jsonlite)})
h <- read.csv("../../mlmwrap/datasets/hsb.csv")
h$cwc_ses <- h$ses - ave(h$ses, h$school)
models <- list(
  diag_sector = mathach ~ sector + cwc_ses + (1 + cwc_ses || school),
  block_female = mathach ~ sector + female + (1 + female | school) + (0 + cwc_ses | school)
)
out <- list(meta = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
for (key in names(models)) {
  m <- lmer(models[[key]], data = h, REML = TRUE)
  ci <- suppressWarnings(confint(m, oldNames = FALSE))
  vc <- as.data.frame(VarCorr(m))
  out$models[[key]] <- list(
    formula = deparse(models[[key]]), reml = TRUE,
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    varcorr = vc, sigma2 = sigma(m)^2, deviance = REMLcrit(m),
    confint = list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
  )
}
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE), "issue9_tau_structures.json")
