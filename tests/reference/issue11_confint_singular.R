# lme4's profile intervals on a singular fit with three random effects (issue 11):
# HSB, the first 20 schools in the file's order, mathach ~ cwc(ses) + minority with
# random intercept and both slopes, REML. Run from this folder: Rscript issue11_confint_singular.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
hsb <- read.csv("../../mlmwrap/datasets/hsb.csv")
keep <- unique(hsb$school)[1:20]
d <- hsb[hsb$school %in% keep, ]
d$cwc_ses <- d$ses - ave(d$ses, d$school)
m <- lmer(mathach ~ cwc_ses + minority + (1 + cwc_ses + minority | school), data = d, REML = TRUE)
ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE))
out <- list(
  formula = "mathach ~ cwc_ses + minority + (1 + cwc_ses + minority | school)",
  schools = keep, reml = TRUE, singular = isSingular(m), deviance = REMLcrit(m),
  tau = unname(as.matrix(VarCorr(m)$school)),
  confint = list(parameter = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2])),
  R = R.version.string, lme4 = as.character(packageVersion("lme4"))
)
writeLines(toJSON(out, digits = 10, auto_unbox = TRUE, pretty = TRUE), "issue11_confint_singular.json")
