# Reference numbers for issue 3 (centering, ICCs, within/between/contextual effects) on HSB,
# from R: lme4, performance, psych. Run from this folder: Rscript issue3_centering.R
# (writes issue3_centering.json).
suppressMessages({library(lme4); library(performance); library(psych); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses
d$school <- factor(d$school)
out <- list()
vars <- c("mathach", "ses", "minority", "female")
# ICC of each variable from the REML random-intercept null model (performance::icc)
icc_of <- function(dd, v) {
  m <- lmer(as.formula(paste(v, "~ 1 + (1 | school)")), dd, REML = TRUE)
  vc <- as.data.frame(VarCorr(m))
  list(icc = unname(performance::icc(m)$ICC_adjusted), tau00 = vc$vcov[1], sigma2 = vc$vcov[2])
}
out$icc_model <- lapply(setNames(vars, vars), function(v) icc_of(d, v))
# the same with missing values: a deterministic pattern (row numbers are 1-based)
dm <- d
i <- seq_len(nrow(dm))
dm$ses[i %% 7 == 0] <- NA
dm$mathach[i %% 11 == 3] <- NA
dm$minority[dm$school == levels(dm$school)[1]] <- NA   # a whole school without minority
sbm <- statsBy(dm[, c("school", vars)], group = "school", cors = TRUE)
out$statsby_missing <- list(vars = vars, rwg = unname(sbm$rwg), rbg = unname(sbm$rbg),
  icc1 = unname(sbm$ICC1[-1]), icc2 = unname(sbm$ICC2[-1]))
out$icc_model_missing <- lapply(setNames(vars, vars), function(v) icc_of(dm[!is.na(dm[[v]]), ], v))
# within / between / contextual effects under other parametrizations
eff <- function(m, w, b = NULL, ctx = NULL) {
  V <- as.matrix(vcov(m)); g <- fixef(m)
  comb <- function(a) list(estimate = sum(a * g[names(a)]),
                           se = sqrt(drop(t(a) %*% V[names(a), names(a)] %*% a)))
  list(within = comb(w), between = comb(b), contextual = comb(ctx))
}
# raw ses with its cluster mean: within = ses, contextual = cm_ses, between = ses + cm_ses
raw <- lmer(mathach ~ ses + cm_ses + (1 | school), d)
out$effects_raw <- eff(raw, c(ses = 1), c(ses = 1, cm_ses = 1), c(cm_ses = 1))
# random slope of cwc(ses): within = average slope
rs <- lmer(mathach ~ cwc_ses + cm_ses + (cwc_ses | school), d)
out$effects_random_slope <- eff(rs, c(cwc_ses = 1), c(cm_ses = 1), c(cm_ses = 1, cwc_ses = -1))
# with another level-2 predictor and a cross-level interaction
wb2 <- lmer(mathach ~ cwc_ses + cm_ses + sector + cwc_ses:sector + (cwc_ses | school), d)
out$effects_sector <- eff(wb2, c(cwc_ses = 1), c(cm_ses = 1), c(cm_ses = 1, cwc_ses = -1))
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'issue3_centering.json')
cat("written\n")
