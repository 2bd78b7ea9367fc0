# Reference numbers for mlmwrap.compare / build_up / variance_explained on the HSB data, beyond
# hsb_inference.json: lme4 1.1-31 anova() tables, performance::r2_nakagawa, mitml::multilevelR2.
# Run from this folder: Rscript issue4_compare_r2.R   (writes issue4_compare_r2.json)
suppressMessages({library(lme4); library(performance); library(mitml); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses
d$cwc_minority <- d$minority - ave(d$minority, d$school)
d$cwc_female <- d$female - ave(d$female, d$school)
d$school <- factor(d$school)
out <- list()
# the seed's build-up: null -> cwc(ses) -> random slope -> meanses and sector on both
null <- lmer(mathach ~ 1 + (1 | school), d)
ri <- lmer(mathach ~ cwc_ses + (1 | school), d)
rc <- lmer(mathach ~ cwc_ses + (cwc_ses | school), d)
isao <- lmer(mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector +
  (cwc_ses | school), d)
a <- anova(null, ri, rc, isao)   # refits all four by ML
out$buildup_anova_ml <- list(deviance = a$deviance, npar = a$npar, aic = a$AIC, bic = a$BIC,
  chisq = a$Chisq, df = a$Df, p = a$`Pr(>Chisq)`)
r2 <- lapply(list(ri = ri, rc = rc), r2_nakagawa)
out$buildup_r2_nakagawa <- list(model = c("ri", "rc"),
  marginal = sapply(r2, function(r) unname(r$R2_marginal)),
  conditional = sapply(r2, function(r) unname(r$R2_conditional)))
# two random slopes added at once (same fixed part, REML): the naive p-value
ri2 <- lmer(mathach ~ cwc_ses + cwc_minority + (1 | school), d)
rc2 <- lmer(mathach ~ cwc_ses + cwc_minority + (cwc_ses + cwc_minority | school), d)
a2 <- anova(ri2, rc2, refit = FALSE)
out$lrt_two_slopes_reml <- list(deviance = a2$deviance, chisq = a2$Chisq[2], df = a2$Df[2],
  p_naive = a2$`Pr(>Chisq)`[2])
# Raudenbush & Bryk (RB1 = 1 - sigma2/sigma2_0, RB2 = 1 - tau00/tau00_0), Snijders & Bosker level 1
# (SB) against the null model, and MVP = var(X b) / model-implied variance (Rights & Sterba's
# R2_t^(f)), from mitml::multilevelR2, for a random-intercept model with cwc(ses) and meanses (REML)
# and for the slopes-as-outcomes model (MVP only: mitml's SB uses tau00 of the random-slope model)
rim <- lmer(mathach ~ cwc_ses + meanses + (1 | school), d)
m1 <- multilevelR2(rim)
out$mitml_ri_meanses <- as.list(m1)
out$mitml_isao <- list(MVP = unname(multilevelR2(isao, print = "MVP")))
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'issue4_compare_r2.json')
cat("written\n")
