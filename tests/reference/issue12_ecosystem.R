# Reference numbers for issue 12 (one vocabulary across results) on the HSB data, lme4.
# Run from this folder: Rscript issue12_ecosystem.R   (writes issue12_ecosystem.json)
suppressMessages({library(lme4); library(performance); library(insight); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses
d$school <- factor(d$school)
out <- list()
sch <- c("1224", "1288", "1308", "4523", "9586")
# lme4's coef(): each school's fixef + ranef per coefficient term (random-coefficient and
# intercepts- and slopes-as-outcomes models; in the latter the level-2 terms are constant)
rc <- lmer(mathach ~ cwc_ses + (cwc_ses | school), d)
co <- coef(rc)$school[sch, ]
out$coef_rc <- list(school = sch, intercept = co[, "(Intercept)"], cwc_ses = co[, "cwc_ses"])
isao <- lmer(mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses | school), d)
co <- coef(isao)$school[sch, ]
out$coef_isao <- list(school = sch, intercept = co[, "(Intercept)"], meanses = co[, "meanses"],
  sector = co[, "sector"], cwc_ses = co[, "cwc_ses"], meanses_cwc_ses = co[, "meanses:cwc_ses"])
# Posterior covariance of the EB effects (condVar) for the same schools
pv <- attr(ranef(rc, condVar = TRUE)$school, "postVar")
idx <- match(sch, levels(d$school))
out$postvar_rc <- list(school = sch, v00 = pv[1, 1, idx], v01 = pv[1, 2, idx], v11 = pv[2, 2, idx])
# Fitted values and level-1 residuals (HLM's level-1 residual file) of the first rows
out$resid_rc <- list(row = 1:8, fitted = unname(fitted(rc)[1:8]), residual = unname(residuals(rc)[1:8]),
  fixed = unname(predict(rc, re.form = NA)[1:8]))
# Nakagawa's variance parts (insight::get_variance, as performance::r2_nakagawa uses them)
rim <- lmer(mathach ~ cwc_ses + meanses + (1 | school), d)
v <- get_variance(rim)
out$nakagawa_rim <- list(var_fixed = v$var.fixed, var_random = v$var.random,
  var_residual = v$var.residual)
v <- get_variance(isao)
out$nakagawa_isao <- list(var_fixed = v$var.fixed, var_random = v$var.random,
  var_residual = v$var.residual)
out$versions <- list(lme4 = as.character(packageVersion("lme4")),
  performance = as.character(packageVersion("performance")), insight = as.character(packageVersion("insight")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "issue12_ecosystem.json")
