# Reference numbers for issue 5 (per-cluster estimates and predictions) on the HSB data, lme4 1.1-31.
# Run from this folder: Rscript issue5_eb.R   (writes issue5_eb.json)
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses
d$school <- factor(d$school)
out <- list()
# Intercepts- and slopes-as-outcomes: EB effects, posterior SDs, and each school's own coefficients
# beta_Kj = gamma_K0 + gamma_K1 meanses_j + gamma_K2 sector_j + u_Kj (HLM's EB coefficients;
# lme4's coef() would give only gamma_K0 + u_Kj here).
isao <- lmer(mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses | school), d)
re <- ranef(isao, condVar = TRUE); pv <- attr(re$school, "postVar"); g <- fixef(isao)
sch <- c("1224", "1288", "1308", "4523", "9586")
idx <- match(sch, rownames(re$school))
w <- d[match(sch, d$school), c("meanses", "sector")]
out$eb_isao <- list(school = sch, u0 = re$school[idx, 1], u1 = re$school[idx, 2],
  u0_sd = sqrt(pv[1, 1, idx]), u1_sd = sqrt(pv[2, 2, idx]),
  beta0 = unname(g["(Intercept)"] + g["meanses"] * w$meanses + g["sector"] * w$sector + re$school[idx, 1]),
  beta1 = unname(g["cwc_ses"] + g["meanses:cwc_ses"] * w$meanses + g["sector:cwc_ses"] * w$sector + re$school[idx, 2]))
# Per-school OLS of the random-coefficient model (lmList) for the same schools
ols <- lmList(mathach ~ cwc_ses | school, d)
co <- coef(ols)[sch, ]
out$ols_rc <- list(school = sch, b0 = unname(co[, 1]), b1 = unname(co[, 2]))
# Predictions on new rows: two known schools (new students; cwc uses the school's fitted mean)
# and one new school 9999 (cwc uses its own mean in the new data; fixed part only).
new <- data.frame(school = c("1224", "1224", "4523", "9999", "9999"),
                  ses = c(-0.5, 1.2, 0.3, 0.4, -0.2),
                  meanses = c(NA, NA, NA, 0.1, 0.1), sector = c(NA, NA, NA, 1, 1))
known <- new$school %in% levels(d$school)
cm_fit <- tapply(d$ses, d$school, mean)
new$cm_ses <- ifelse(known, cm_fit[new$school], ave(new$ses, new$school))
sch_w <- d[match(new$school, d$school), c("meanses", "sector")]
new$meanses[known] <- sch_w$meanses[known]; new$sector[known] <- sch_w$sector[known]
new$cwc_ses <- new$ses - new$cm_ses
out$predict_isao <- list(school = new$school, ses = new$ses, meanses = new$meanses, sector = new$sector,
  random = unname(predict(isao, newdata = new, allow.new.levels = TRUE)),
  fixed = unname(predict(isao, newdata = new, re.form = NA)))
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'issue5_eb.json')
cat("written\n")
