# lme4 1.1-31 conditional modes and condVar SDs of eg_growth (REML) for tests/test_three_level.py.
# Run from tests/reference: Rscript issue9_eb_egsingle.R (child file trimmed to its first 200 rows).
suppressMessages(library(lme4))
d <- read.csv(gzfile("../data/egsingle.csv.gz"))
m <- lmer(math ~ year + (1 + year | childid) + (1 + year | schoolid), data = d, REML = TRUE)
re <- ranef(m, condVar = TRUE)
s <- re$schoolid; pv <- attr(s, "postVar")
write.csv(data.frame(id = rownames(s), u00 = s[,1], u10 = s[,2], se00 = sqrt(pv[1,1,]), se10 = sqrt(pv[2,2,])), "issue9_eb_school.csv", row.names = FALSE)
c <- re$childid; pv <- attr(c, "postVar")
write.csv(data.frame(id = rownames(c), r0 = c[,1], r1 = c[,2], se0 = sqrt(pv[1,1,]), se1 = sqrt(pv[2,2,])), "issue9_eb_child.csv", row.names = FALSE)
