# More reference numbers for mlmwrap's small-sample tests, robust SEs and variance-component
# intervals (issue 4, items 2, 3, 6), beyond hsb_inference.json: an ML fit, a random-intercept
# model, a model with three random effects, a boundary (singular) fit, lme4's profile of the
# correlation on its own grid, and log-scale Wald intervals from lmerTest's deviance function.
# Run from this folder: Rscript issue4b_inference.R   (writes issue4b_inference.json)
# R 4.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, clubSandwich 0.5.8, numDeriv.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(clubSandwich)
  library(numDeriv); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses
d$school <- factor(d$school)
b <- read.csv('../data/boundary.csv'); b$cluster <- factor(b$cluster)
tight <- lmerControl(optCtrl = list(xtol_abs = 1e-10, ftol_abs = 1e-12))
out <- list()

tests <- function(m, cluster, kr = TRUE) {
  s <- coef(summary(m, ddf = "Satterthwaite"))
  r <- list(term = rownames(s), estimate = unname(s[, "Estimate"]), se = unname(s[, "Std. Error"]),
            satt_df = unname(s[, "df"]), satt_p = unname(s[, "Pr(>|t|)"]))
  if (kr) {
    k <- coef(summary(m, ddf = "Kenward-Roger"))
    r$kr_se <- unname(k[, "Std. Error"]); r$kr_df <- unname(k[, "df"]); r$kr_p <- unname(k[, "Pr(>|t|)"])
  }
  cr <- coef_test(m, vcov = "CR2", cluster = cluster, test = "Satterthwaite")
  r$cr2_se <- cr$SE; r$cr2_df <- cr$df_Satt; r$cr2_p <- cr$p_Satt
  r
}

isao_f <- mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses | school)
m <- lmerTest::lmer(isao_f, d, REML = FALSE, control = tight)
out$isao_ml <- tests(m, d$school, kr = FALSE)
# profile intervals of the slopes-as-outcomes model: the correlation's and the slope SD's
# profiles never rise far enough, so lme4 reports the boundaries (-1, 1 and 0)
m <- lme4::lmer(isao_f, d)
ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE, quiet = TRUE))
out$isao_profile <- list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

m <- lmerTest::lmer(mathach ~ meanses + cwc_ses + (1 | school), d, control = tight)
out$ri <- tests(m, d$school)
ci <- confint(m, method = "profile", oldNames = FALSE, quiet = TRUE)
out$ri$profile <- list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

m <- lmerTest::lmer(mathach ~ sector + cwc_ses + female + minority + (cwc_ses + female + minority | school),
                    d, control = tight)
out$three_random <- tests(m, d$school)

m <- lmerTest::lmer(y ~ w + x + (x | cluster), b, control = tight)
out$boundary_slope <- tests(m, b$cluster)
out$boundary_slope$theta <- unname(getME(m, "theta"))
m <- lme4::lmer(y ~ w + x + (1 | cluster), b, control = tight)
ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE, quiet = TRUE))
out$boundary_ri_profile <- list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))

# lme4's own profile of the random-coefficient model's correlation and slope SD: zeta on its grid.
# confint() interpolates these points; for the correlation its spline fails and it falls back to
# linear interpolation, which is why the exact root differs from confint's bound in the 3rd digit.
rc <- lme4::lmer(mathach ~ cwc_ses + (cwc_ses | school), d)
pr <- as.data.frame(profile(rc, which = 2:3, signames = FALSE))
for (p in c("cor_cwc_ses.(Intercept)|school", "sd_cwc_ses|school")) {
  rows <- pr$.par == p
  out$profile_grid_rc[[p]] <- list(value = pr[rows, p], zeta = pr[rows, ".zeta"])
}

# Wald intervals on the log SD / atanh correlation / log sigma scale from the Hessian of the REML
# deviance (lmerTest's devfun_vp: theta and sigma free), by numDeriv.
devfun <- lme4::lmer(mathach ~ cwc_ses + (cwc_ses | school), d, devFunOnly = TRUE)
to_varpar <- function(u) {
  sd <- exp(u[c(1, 3)]); r <- tanh(u[2]); sigma <- exp(u[4])
  T <- diag(sd) %*% matrix(c(1, r, r, 1), 2) %*% diag(sd)
  Lc <- t(chol(T)) / sigma
  c(Lc[1, 1], Lc[2, 1], Lc[2, 2], sigma)
}
vc <- as.data.frame(VarCorr(rc))
u_hat <- c(log(vc$sdcor[1]), atanh(vc$sdcor[3]), log(vc$sdcor[2]), log(sigma(rc)))
H <- hessian(function(u) lmerTest:::devfun_vp(to_varpar(u), devfun, reml = TRUE), u_hat)
se <- sqrt(diag(2 * solve(H)))
z <- qnorm(0.975)
out$wald_rc <- list(param = c("sd(u0)", "cor(u0,u1)", "sd(u1)", "sigma"), se_scale = se,
  lower = c(exp(u_hat[1] - z * se[1]), tanh(u_hat[2] - z * se[2]), exp(u_hat[3] - z * se[3]), exp(u_hat[4] - z * se[4])),
  upper = c(exp(u_hat[1] + z * se[1]), tanh(u_hat[2] + z * se[2]), exp(u_hat[3] + z * se[3]), exp(u_hat[4] + z * se[4])))

write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'issue4b_inference.json')
cat("written\n")
