# Extra lme4 reference fits for mlmwrap's tests (beyond ../../../shared/reference/hsb_lme4.json):
# the eight HSB models by ML, a three-random-effect model, listwise deletion, categorical
# level-2 predictors, transforms, and boundary (singular) fits on simulated data.
# Run from this folder: Rscript lme4_extra.R   (R 4.2, lme4 1.1-31)
suppressMessages({library(lme4); library(jsonlite)})
hsb <- read.csv('../../mlmwrap/datasets/hsb.csv')
prep <- function(d) {
  d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses; d$cgm_ses <- d$ses - mean(d$ses)
  d$school <- factor(d$school); d
}
d <- prep(hsb)
# Listwise deletion: some ses and mathach missing; centering on the rows left.
na <- hsb; rows <- seq_len(nrow(na))
na$ses[rows %% 37 == 0] <- NA; na$mathach[rows %% 53 == 0] <- NA; na$sector[na$school == 1224] <- NA
dna <- prep(na[complete.cases(na[, c('mathach', 'ses', 'meanses', 'sector', 'school')]), ])
# Categorical level-2 predictors.
d$sectorc <- factor(ifelse(d$sector == 1, 'Catholic', 'Public'))
d$sizecat <- factor(cut(d$size, c(0, 700, 1400, Inf), labels = c('small', 'medium', 'large')),
                    levels = c('large', 'medium', 'small'))
# Transforms: log of a level-2 variable, square of a grand-mean-centered level-1 variable.
sch <- d[!duplicated(d$school), ]
d$lsize_c <- log(d$size) - mean(log(sch$size))
b <- read.csv('../data/boundary.csv'); b$cluster <- factor(b$cluster)

cases <- list(
 null_ml = list(f = mathach ~ 1 + (1|school), reml=FALSE, data='d'),
 means_as_outcomes_ml = list(f = mathach ~ meanses + (1|school), reml=FALSE, data='d'),
 random_coefficient_ml = list(f = mathach ~ cwc_ses + (cwc_ses|school), reml=FALSE, data='d'),
 rancova_cgm_ml = list(f = mathach ~ cgm_ses + (1|school), reml=FALSE, data='d'),
 within_between_ml = list(f = mathach ~ cwc_ses + cm_ses + (1|school), reml=FALSE, data='d'),
 contextual_ml = list(f = mathach ~ cgm_ses + cm_ses + (1|school), reml=FALSE, data='d'),
 three_random = list(f = mathach ~ sector + cwc_ses + female + minority + (cwc_ses + female + minority|school), reml=TRUE, data='d'),
 listwise = list(f = mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses|school), reml=TRUE, data='dna'),
 categorical = list(f = mathach ~ sectorc + sizecat + cwc_ses + cwc_ses:sectorc + (cwc_ses|school), reml=TRUE, data='d'),
 transforms = list(f = mathach ~ lsize_c + cgm_ses + I(cgm_ses^2) + (1|school), reml=TRUE, data='d'),
 boundary_reml = list(f = y ~ w + x + (1|cluster), reml=TRUE, data='b'),
 boundary_ml = list(f = y ~ w + x + (1|cluster), reml=FALSE, data='b'),
 boundary_slope = list(f = y ~ w + x + (x|cluster), reml=TRUE, data='b')
)
out <- list()
for (n in names(cases)) {
  cc <- cases[[n]]
  # Tight optimizer tolerances: with lme4's defaults the three-random-effect model stops
  # with max|grad| = 0.004 ('failed to converge'); these reach the optimum.
  m <- lmer(cc$f, get(cc$data), REML=cc$reml,
            control=lmerControl(optCtrl=list(xtol_abs=1e-10, ftol_abs=1e-12)))
  vc <- VarCorr(m)[[1]]
  out[[n]] <- list(formula = paste(deparse(cc$f), collapse=''), reml = cc$reml,
    nobs = nobs(m), ngroups = unname(ngrps(m)),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    tau = unname(as.matrix(vc)), tau_names = colnames(vc), sigma2 = sigma(m)^2,
    deviance = -2*as.numeric(logLik(m)), singular = isSingular(m),
    converged = is.null(m@optinfo$conv$lme4$messages))
  cat(n, -2*as.numeric(logLik(m)), isSingular(m), '\n')
}
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'lme4_extra.json')
